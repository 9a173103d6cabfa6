"""%%checkpointed in a real IPython shell, against the emulator through the real client."""

from __future__ import annotations

import os
import signal

import pytest

from colab_magics.connection import use_client
from colab_magics.drive import connect

SETUP = """
import torch
torch.manual_seed(0)
model = torch.nn.Linear(3, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
losses = []
"""

TRAIN = """%%checkpointed {args}
for step in {name}.range(8):
    if step == {kill_at}:
        os.kill(os.getpid(), signal.SIGINT)
    x = torch.full((2, 3), float(step))
    loss = model(x).pow(2).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    losses.append(step)
"""


@pytest.fixture
def client(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("COLAB_MAGICS_STAGING", str(tmp_path / "staging"))
    c = connect(url=emulator.url, token=emulator.token)
    previous = use_client(c)
    yield c
    use_client(previous)
    c.close()


def _run(shell, code):
    result = shell.run_cell(code)
    return result.error_in_exec


def _cell(args="run1 --save model,opt,losses --every 3", name="ckpt", kill_at=-1):
    return TRAIN.format(args=args, name=name, kill_at=kill_at)


def test_a_rerun_resumes_where_the_first_run_ended(shell, client):
    shell.user_ns.update(os=os, signal=signal)
    assert _run(shell, SETUP) is None
    assert _run(shell, _cell()) is None
    assert shell.user_ns["losses"] == list(range(8))
    assert shell.user_ns["ckpt"].restored_from is None
    manifests = [f.name for f in client.listdir("colab_magics/checkpoints/run1")
                 if f.name.startswith("manifest-")]  # fmt: skip
    assert any(m.startswith("manifest-000000008-") for m in manifests)

    # A new runtime: fresh objects, then the same cell again.
    assert _run(shell, SETUP) is None
    assert _run(shell, _cell()) is None
    ckpt = shell.user_ns["ckpt"]
    assert ckpt.restored_from.step == 8 and ckpt.step == 8
    assert shell.user_ns["losses"] == list(range(8))  # restored, no step redone


def test_ctrl_c_saves_at_the_end_of_the_step_and_a_rerun_continues(shell, client):
    shell.user_ns.update(os=os, signal=signal)
    _run(shell, SETUP)
    error = _run(shell, _cell(args="run2 --save model,opt,losses --every 100 --as c",
                              name="c", kill_at=5))  # fmt: skip
    assert isinstance(error, KeyboardInterrupt)
    assert shell.user_ns["losses"] == [0, 1, 2, 3, 4, 5]  # step 5 finished, then stopped

    _run(shell, SETUP)
    assert _run(shell, _cell(args="run2 --save model,opt,losses --as c", name="c")) is None
    assert shell.user_ns["c"].restored_from.step == 6
    assert shell.user_ns["losses"] == list(range(8))


def test_to_and_keep(shell, client):
    shell.user_ns.update(os=os, signal=signal)
    _run(shell, SETUP)
    # Each step waits for the previous checkpoint to be confirmed, so no snapshot is replaced
    # by a newer one before it is persisted: all 8 are committed, and --keep 2 must prune 6.
    cell = """%%checkpointed run3 --save model --every 1 --keep 2 --to experiments/r3
for step in ckpt.range(8):
    assert ckpt.wait(timeout=60)
"""
    assert _run(shell, cell) is None
    names = [f.name for f in client.listdir("experiments/r3")]
    steps = sorted(int(n.split("-")[1]) for n in names if n.startswith("manifest-"))
    assert steps == [7, 8]
    assert not client.exists("colab_magics/checkpoints/run3")


def test_fresh_ignores_existing_checkpoints(shell, client):
    shell.user_ns.update(os=os, signal=signal)
    _run(shell, SETUP)
    assert _run(shell, _cell(args="run4 --save model,opt,losses")) is None
    _run(shell, SETUP)
    assert _run(shell, _cell(args="run4 --save model,opt,losses --fresh")) is None
    assert shell.user_ns["ckpt"].restored_from is None
    assert shell.user_ns["losses"] == list(range(8))
