"""A committed checkpoint damaged on Drive: a fresh run skips it, says which and why, and
resumes from the one before with exactly that one's state (``%%checkpointed`` in a real shell).
"""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import make_service
from tests.reliability.conftest import newest_manifest, replace_on_drive, run_cell

RUN = "corrupt-run"
FOLDER = f"colab_magics/checkpoints/{RUN}"

SETUP = """
import torch
torch.manual_seed(SEED)
model = torch.nn.Linear(8, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
losses = []
seen = set()
at_start = []
"""

# ``seen`` (a set) has no safer format than pickle: the checkpoint holds torch.pt, objects.pkl
# and values.json, so each kind of blob can be damaged.
TRAIN = """%%checkpointed corrupt-run --save model,opt,losses,seen --every 100 --keep 5
at_start.append((list(losses), sorted(seen), model.weight.detach().clone()))
for step in ckpt.range(STEPS):
    loss = model(torch.full((2, 8), float(step))).pow(2).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    losses.append(step)
    seen.add(step)
"""


def _change_blob(emulator, client, manifest) -> str:
    blob = _blob(client, manifest, "torch.pt")
    replace_on_drive(emulator, blob["file_id"], b"not the bytes that were saved")
    return "torch.pt on Drive has md5"


def _truncate_manifest(emulator, client, manifest) -> str:
    data = client.read_bytes(manifest)
    replace_on_drive(emulator, manifest.id, data[: len(data) // 2])
    return "not a readable manifest"


def _delete_blob(emulator, client, manifest) -> str:
    blob = _blob(client, manifest, "objects.pkl")
    make_service(emulator).files().delete(fileId=blob["file_id"]).execute()
    return "objects.pkl"


def _blob(client, manifest, name: str) -> dict:
    blobs = json.loads(client.read_bytes(manifest))["blobs"]
    return next(b for b in blobs if b["name"] == name)


@pytest.mark.parametrize(
    "damage",
    [_change_blob, _truncate_manifest, _delete_blob],
    ids=["blob-bytes-changed", "manifest-truncated", "blob-deleted"],
)
def test_a_damaged_checkpoint_is_skipped_for_the_previous_one(
    shell, emulator, connected, capsys, damage
):
    assert run_cell(shell, SETUP.replace("SEED", "0")) is None
    assert run_cell(shell, TRAIN.replace("STEPS", "3")) is None  # confirmed: step 3
    ns = shell.user_ns
    at_3 = (list(ns["losses"]), sorted(ns["seen"]), ns["model"].weight.detach().clone())
    assert run_cell(shell, TRAIN.replace("STEPS", "6")) is None  # confirmed: step 6
    straight = ns["model"].weight.detach().clone()

    newest = newest_manifest(connected, FOLDER)
    assert newest.name.startswith("manifest-000000006-")
    why = damage(emulator, connected, newest)
    capsys.readouterr()

    # A fresh runtime: other objects, another seed, the same cell.
    assert run_cell(shell, SETUP.replace("SEED", "1")) is None
    assert run_cell(shell, TRAIN.replace("STEPS", "6")) is None
    out = capsys.readouterr().out
    ckpt = shell.user_ns["ckpt"]
    assert ckpt.restored_from is not None and ckpt.restored_from.step == 3
    message = ckpt.progress.get("message") or ""
    for text in (message, out):
        assert f"skipped {newest.name}: " in text, text
        assert why in text.split(f"skipped {newest.name}: ", 1)[1], text
    losses, seen, weight = shell.user_ns["at_start"][0]
    assert (losses, seen) == at_3[:2] and torch.equal(weight, at_3[2])
    assert shell.user_ns["losses"] == list(range(6))
    assert torch.equal(shell.user_ns["model"].weight, straight)  # same result as unbroken
