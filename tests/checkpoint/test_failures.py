"""Drive failing, the runtime ending, SIGTERM: training goes on or stops cleanly, nothing lost."""

from __future__ import annotations

import os
import signal
import time

import pytest
import torch

from colab_magics.checkpoint.api import checkpointed
from colab_magics.checkpoint.deadline import runtime_age
from colab_magics.checkpoint.drive_store import DriveCheckpointStore
from colab_magics.progress import DONE, Progress

FOLDER = "colab_magics/checkpoints/r"


def _namespace():
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 64)
    return {"model": model, "opt": torch.optim.SGD(model.parameters(), lr=0.1), "done": []}


def _step(ns, step):
    loss = ns["model"](torch.randn(8, 64)).pow(2).mean()
    ns["opt"].zero_grad()
    loss.backward()
    ns["opt"].step()
    ns["done"].append(step)


def _store(client):
    return DriveCheckpointStore(client, FOLDER, run="r")


def test_quota_running_out_never_stops_training(emulator, client, tmp_path):
    ns, progress, errors = _namespace(), Progress("r"), []
    progress.subscribe(lambda p: errors.append(p.get("error")) if p.get("error") else None)
    with checkpointed("r", save=["model", "opt", "done"], namespace=ns, every="1",
                      store=_store(client), progress=progress) as ckpt:  # fmt: skip
        for step in ckpt.range(12):
            if step == 3:
                ckpt.wait()
                emulator.settings.update({"quota_bytes": client.quota().usage})  # Drive is full
            if step == 8:
                ckpt.wait()
                assert "drive is full" in (progress.get("error") or "").lower()
                confirmed_while_full = progress.get("confirmed_step")
                emulator.settings.update({"quota_bytes": None})  # the user freed space
            _step(ns, step)
    assert ns["done"] == list(range(12))  # every step ran
    assert confirmed_while_full == 3
    assert any("drive is full" in e.lower() for e in errors)
    assert progress.state == DONE and progress.get("error") is None
    assert progress.get("confirmed_step") == 12
    manifests = [f.name for f in client.listdir(FOLDER) if f.name.startswith("manifest-")]
    assert max(manifests).startswith("manifest-000000012-")


def test_near_the_deadline_the_loop_stops_cleanly_with_a_confirmed_checkpoint(client):
    ns, progress = _namespace(), Progress("r")
    lifetime = f"{runtime_age() + 4:.1f}s"  # this "runtime" ends in about 4 s
    with checkpointed("r", save=["model", "opt", "done"], namespace=ns, every="1h",
                      lifetime=lifetime, margin="3s", store=_store(client),
                      progress=progress) as ckpt:  # fmt: skip
        for step in ckpt.range(1000):
            _step(ns, step)
            time.sleep(0.05)
    assert ckpt.stopped_for_deadline
    assert 0 < len(ns["done"]) < 1000
    assert progress.get("confirmed_step") == len(ns["done"])
    assert "Re-run this cell in a fresh runtime" in progress.get("message")


def test_sigterm_saves_at_the_end_of_the_step(client):
    ns = _namespace()
    with (
        pytest.raises(KeyboardInterrupt, match="SIGTERM at step 5"),
        checkpointed("r", save=["model", "opt", "done"], namespace=ns, every="1h",
                     store=_store(client)) as ckpt,
    ):  # fmt: skip
        for step in ckpt.range(10):
            if step == 4:
                os.kill(os.getpid(), signal.SIGTERM)
            _step(ns, step)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler put back
    fresh = _namespace()
    with checkpointed("r", save=["model", "opt", "done"], namespace=fresh, every="1h",
                      store=_store(client)) as ckpt:  # fmt: skip
        assert ckpt.restored_from.step == 5
        for step in ckpt.range(10):
            _step(fresh, step)
    assert fresh["done"] == list(range(10))
