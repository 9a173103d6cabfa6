"""Drive fills up part-way through a ``%%checkpointed`` cell in a real shell.

Training goes on to its last step; the progress and the text say Drive is full, once; the
newest checkpoint confirmed before that stays restorable; and once space is freed with
``%drive_quota --empty-trash`` or ``%drive_purge PATH --yes`` the next checkpoint is confirmed
without anyone re-running anything.
"""

from __future__ import annotations

import pytest
import torch
from IPython.core.error import UsageError

from colab_magics.progress import DONE, FAILED
from tests.reliability.conftest import manifest_steps, run_cell

RUN = "quota-run"
FOLDER = f"colab_magics/checkpoints/{RUN}"
FULL = "Drive is full"
SPARE = 300_000  # bytes of deletable files on Drive before training: freeing them makes room

SETUP = """
import torch
torch.manual_seed(SEED)
model = torch.nn.Linear(32, 32)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
losses = []
at_start = []
"""

# ``fill_drive`` and ``free_space`` come from the test (the emulator runs in this process).
TRAIN = """%%checkpointed quota-run --save model,opt,losses --every 1 --keep 50
at_start.append((list(losses), model.weight.detach().clone()))
for step in ckpt.range(STEPS):
    if step == FULL_AT:
        ckpt.wait()
        at_full.append(model.weight.detach().clone())
        fill_drive()
    if step == FREE_AT:
        ckpt.wait()
        while_full.append((ckpt.progress.get("error"), ckpt.progress.get("confirmed_step")))
        free_space()
    if step == FREE_AT + 3:
        ckpt.wait()
        after_freeing.append((ckpt.progress.get("error"), ckpt.progress.get("confirmed_step")))
    x = torch.full((4, 32), float(step))
    loss = model(x).pow(2).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    losses.append(step)
"""


def _train(steps: int, full_at: int = -100, free_at: int = -100) -> str:
    return (
        TRAIN.replace("STEPS", str(steps))
        .replace("FULL_AT", str(full_at))
        .replace("FREE_AT", str(free_at))
    )


def _setup(seed: int) -> str:
    return SETUP.replace("SEED", str(seed))


@pytest.fixture
def drive(shell, emulator, connected):
    """Drive holding deletable files (some trashed, some in ``old-runs``), and the callables
    the training cell uses to fill it up and to free space the way a user would."""
    connected.upload(b"t" * SPARE, "scratch/trashed.bin")
    connected.trash("scratch/trashed.bin")
    for i in range(3):
        connected.upload(bytes([i]) * (SPARE // 3), f"old-runs/r{i}/weights.bin")

    def fill_drive() -> None:
        emulator.settings.update({"quota_bytes": connected.quota().usage})

    shell.user_ns.update(fill_drive=fill_drive, while_full=[], after_freeing=[], at_full=[])
    yield connected
    emulator.settings.update({"quota_bytes": None})


@pytest.mark.parametrize(
    ("magic", "args", "said"),
    [
        ("drive_quota", "--empty-trash", "Emptied the trash"),
        ("drive_purge", "old-runs --yes", "permanently"),
    ],
    ids=["empty-trash", "purge"],
)
def test_checkpointing_resumes_by_itself_once_space_is_freed(
    shell, emulator, drive, capsys, magic, args, said
):
    shell.user_ns["free_space"] = lambda: shell.run_line_magic(magic, args)
    assert run_cell(shell, _setup(0)) is None
    capsys.readouterr()
    assert run_cell(shell, _train(14, full_at=4, free_at=8)) is None
    out, err = capsys.readouterr()
    ns = shell.user_ns
    progress = ns["ckpt"].progress

    assert ns["losses"] == list(range(14))  # training never stopped
    ((error, confirmed),) = ns["while_full"]
    assert FULL in error and "retry" in error
    assert confirmed == 4  # the last checkpoint confirmed before Drive filled up
    assert said in out
    assert ns["after_freeing"] == [(None, 11)]  # confirmed again, the error gone, by itself
    assert emulator.settings.quota_bytes is not None  # space was freed, not the limit lifted
    assert progress.state == DONE and progress.get("error") is None
    assert progress.get("confirmed_step") == 14
    steps = manifest_steps(drive, FOLDER)
    assert 4 in steps and 11 in steps and steps[-1] == 14
    assert not {s for s in steps if s > 4} - set(range(9, 15))  # none while Drive was full
    text = out + err
    assert text.count(FULL) == 1, text  # said once, not at every step


def test_while_drive_is_full_a_fresh_run_resumes_from_the_last_confirmed_checkpoint(
    shell, emulator, drive, capsys
):
    assert run_cell(shell, _setup(0)) is None
    assert run_cell(shell, _train(8, full_at=4)) is None
    out, err = capsys.readouterr()
    ns = shell.user_ns
    weights_at_4 = ns["at_full"][0]
    progress = ns["ckpt"].progress
    assert ns["losses"] == list(range(8))
    assert progress.state == FAILED
    assert FULL in progress.get("error")
    assert "the newest confirmed one is step 4" in progress.get("error")
    assert FULL in out + err
    assert manifest_steps(drive, FOLDER)[-1] == 4

    # A fresh runtime (other objects, other seed) while Drive is still full.
    assert run_cell(shell, _setup(1)) is None
    assert run_cell(shell, _train(8)) is None
    ns = shell.user_ns
    assert ns["ckpt"].restored_from.step == 4
    losses_at_start, weights = ns["at_start"][0]
    assert losses_at_start == [0, 1, 2, 3]
    assert torch.equal(weights, weights_at_4)
    assert ns["losses"] == list(range(8))
    assert ns["ckpt"].progress.state == FAILED  # still full: nothing new counted

    # Space freed from outside the cell: the next run's checkpoints are confirmed again.
    assert run_cell(shell, "%drive_quota --empty-trash") is None
    assert run_cell(shell, _setup(2)) is None
    assert run_cell(shell, _train(8)) is None
    ckpt = shell.user_ns["ckpt"]
    assert ckpt.restored_from.step == 4
    assert ckpt.progress.state == DONE and ckpt.progress.get("confirmed_step") == 8
    assert manifest_steps(drive, FOLDER)[-1] == 8


def test_purge_refuses_my_drive_itself(shell, drive):
    for path in (".", "drive:", "/content/drive/MyDrive"):
        error = run_cell(shell, f"%drive_purge {path} --yes")
        assert isinstance(error, UsageError) and "My Drive itself" in str(error), error
    assert drive.exists("old-runs/r0/weights.bin") and drive.quota().usage_in_trash == SPARE
