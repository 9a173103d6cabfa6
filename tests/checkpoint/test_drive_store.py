"""Checkpoints through the real client against the emulator: commit, restore, skip, prune."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colab_magics.checkpoint.api import checkpointed
from colab_magics.checkpoint.drive_store import DriveCheckpointStore

FOLDER = "colab_magics/checkpoints/run1"


def _model():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def _train(ns, store, tmp_path, steps, *, every="2", keep=3, stop_at=None):
    """Train in a checkpointed block; ``stop_at`` raises mid-run like a dying runtime."""
    with checkpointed(
        "run1", save=["model", "opt", "losses"], namespace=ns, every=every, keep=keep,
        store=store,
    ) as ckpt:  # fmt: skip
        if ckpt.restored_from is None:
            assert ckpt.step == 0
        for step in ckpt.range(steps):
            if step == stop_at:
                raise KeyboardInterrupt
            x = torch.randn(4, 3)
            loss = ns["model"](x).pow(2).mean()
            ns["opt"].zero_grad()
            loss.backward()
            ns["opt"].step()
            ns["losses"].append(round(loss.item(), 6))
    return ckpt


def _fresh_namespace():
    model, opt = _model()
    return {"model": model, "opt": opt, "losses": []}


def test_resume_matches_an_uninterrupted_run(client, tmp_path, monkeypatch):
    torch.manual_seed(123)
    straight = _fresh_namespace()
    _train(straight, DriveCheckpointStore(client, "other/straight", run="run1"), tmp_path, 9)

    torch.manual_seed(123)
    first = _fresh_namespace()
    store = DriveCheckpointStore(client, FOLDER, run="run1")
    with pytest.raises(KeyboardInterrupt):
        _train(first, store, tmp_path, 9, stop_at=5)

    torch.manual_seed(999)  # a new runtime: other RNG state, fresh objects
    second = _fresh_namespace()
    ckpt = _train(second, DriveCheckpointStore(client, FOLDER, run="run1"), tmp_path, 9)
    assert ckpt.restored_from is not None and ckpt.restored_from.step == 4
    assert second["losses"] == straight["losses"]
    for key, value in straight["model"].state_dict().items():
        assert torch.equal(second["model"].state_dict()[key], value)


def test_retention_keeps_the_newest_k(client, tmp_path):
    ns = _fresh_namespace()
    store = DriveCheckpointStore(client, FOLDER, run="run1")
    with checkpointed("run1", save=["model"], namespace=ns, every="1h", keep=2,
                      store=store) as ckpt:  # fmt: skip
        for _ in ckpt.range(5):
            ckpt.wait()  # each checkpoint confirmed before the next: five in all
            ckpt.save()
    names = sorted(f.name for f in client.listdir(FOLDER))
    manifests = [n for n in names if n.startswith("manifest-")]
    blob_folders = [n for n in names if n.startswith("step-")]
    assert [m[:18] for m in manifests] == ["manifest-000000004", "manifest-000000005"]
    assert sorted(m[9:-5] for m in manifests) == sorted(b[5:] for b in blob_folders)


def test_a_corrupt_checkpoint_is_skipped_for_the_previous_one(client, tmp_path, monkeypatch):
    ns = _fresh_namespace()
    # Two runs, so two confirmed checkpoints (steps 2 and 4) whatever the upload timing.
    _train(ns, DriveCheckpointStore(client, FOLDER, run="run1"), tmp_path, 2, every="100")
    _train(ns, DriveCheckpointStore(client, FOLDER, run="run1"), tmp_path, 4, every="100")
    newest = max(f.name for f in client.listdir(FOLDER) if f.name.startswith("step-"))
    torch_blob = client.stat(f"{FOLDER}/{newest}/torch.pt")
    client.upload(b"not the bytes you saved", file_id=torch_blob.id)

    store = DriveCheckpointStore(client, FOLDER, run="run1")
    tried = []
    restored = store.load_newest(
        str(tmp_path / "restore"), lambda folder, manifest: tried.append(manifest.step) or "ok"
    )
    assert restored is not None and restored.manifest.step == 2 and restored.result == "ok"
    assert tried == [2]  # the damaged one was never handed over
    assert len(restored.skipped) == 1 and "torch.pt on Drive has md5" in restored.skipped[0]


def test_no_checkpoint_means_step_zero(client, tmp_path, monkeypatch):
    ns = {"w": np.zeros(3)}
    with checkpointed(
        "run1", save=["w"], namespace=ns, store=DriveCheckpointStore(client, FOLDER, run="run1")
    ) as ckpt:
        assert ckpt.restored_from is None and ckpt.step == 0
        for step in ckpt.range(3):
            ns["w"] += step
    manifests = [f for f in client.listdir(FOLDER) if f.name.startswith("manifest-")]
    assert len(manifests) == 1  # the final checkpoint at the end of the block


def test_the_panel_counts_each_blob_once_and_drops_the_start_note_once_confirmed(client):
    ns = {"w": np.zeros(1000), "b": np.ones(10)}
    store = DriveCheckpointStore(client, FOLDER, run="run1")
    with checkpointed("run1", save=["w", "b"], namespace=ns, store=store) as ckpt:
        assert ckpt.progress.get("message") == "No confirmed checkpoint: starting at step 0"
        for _ in ckpt.range(2):
            pass
    fields = ckpt.progress.snapshot()
    newest = max(f.name for f in client.listdir(FOLDER) if f.name.startswith("step-"))
    blob_bytes = sum(f.size for f in client.listdir(f"{FOLDER}/{newest}"))
    assert fields["bytes_total"] == fields["bytes_done"] == blob_bytes
    assert fields["confirmed_step"] == 2
    assert not fields.get("message")
