"""The GCS checkpoint store through ``checkpointed(..., store=...)``, against the emulator.

The emulator ignores ``ifGenerationMatch`` and ``generation=`` on reads, so what these tests
show is the protocol (blobs, then the manifest; confirmation by md5; names by generation;
retention; fallback) rather than GCS refusing a second writer.
"""

from __future__ import annotations

import json

import pytest
import torch

from colab_magics.checkpoint.api import checkpointed
from colab_magics.gcs.store import GcsCheckpointStore

URL = "gs://data-bucket/ckpt/run1"


def accept_any(folder: str, manifest) -> str:
    """A restore callback that takes any checkpoint whose blobs verified."""
    return "restored"


@pytest.fixture(autouse=True)
def _staging(tmp_path, monkeypatch):
    monkeypatch.setenv("COLAB_MAGICS_STAGING", str(tmp_path / "staging"))


def _fresh():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    return {"model": model, "opt": torch.optim.SGD(model.parameters(), lr=0.1), "losses": []}


def _train(ns, store, steps, *, every="2", keep=3, stop_at=None):
    with checkpointed("run1", save=["model", "opt", "losses"], namespace=ns, every=every,
                      keep=keep, store=store) as ckpt:  # fmt: skip
        for step in ckpt.range(steps):
            if step == stop_at:
                raise KeyboardInterrupt
            loss = ns["model"](torch.randn(4, 3)).pow(2).mean()
            ns["opt"].zero_grad()
            loss.backward()
            ns["opt"].step()
            ns["losses"].append(round(loss.item(), 6))
    return ckpt


def _names(gcs, prefix="ckpt/run1/"):
    found = gcs.client.list_blobs("data-bucket", prefix=prefix)
    return sorted(b.name[len(prefix) :] for b in found)


def test_resume_from_a_bucket_matches_an_uninterrupted_run(gcs, bucket):
    torch.manual_seed(123)
    straight = _fresh()
    _train(straight, GcsCheckpointStore(gcs, "gs://data-bucket/other", run="run1"), 9)

    torch.manual_seed(123)
    first = _fresh()
    with pytest.raises(KeyboardInterrupt):
        _train(first, GcsCheckpointStore(gcs, URL, run="run1"), 9, stop_at=5)

    torch.manual_seed(999)  # a new runtime
    second = _fresh()
    ckpt = _train(second, GcsCheckpointStore(gcs, URL, run="run1"), 9)
    assert ckpt.restored_from is not None and ckpt.restored_from.step == 4
    assert str(ckpt.restored_from.location).startswith(URL + "/manifest-000000004-")
    assert second["losses"] == straight["losses"]
    for key, value in straight["model"].state_dict().items():
        assert torch.equal(second["model"].state_dict()[key], value)


def test_blobs_are_written_before_their_manifest_which_names_their_generation(gcs, bucket):
    ns = _fresh()
    with checkpointed("run1", save=["model"], namespace=ns, every="1h",
                      store=GcsCheckpointStore(gcs, URL, run="run1")) as ckpt:  # fmt: skip
        for _ in ckpt.range(1):
            pass
    objects = {b.name: b for b in gcs.client.list_blobs("data-bucket", prefix="ckpt/run1/")}
    (manifest_name,) = [n for n in objects if "/manifest-" in n]
    manifest = json.loads(objects[manifest_name].download_as_bytes())
    for entry in manifest["blobs"]:
        name, generation = entry["file_id"].rsplit("#", 1)
        blob = objects[name]
        assert int(generation) == blob.generation
        assert blob.time_created <= objects[manifest_name].time_created


def test_retention_keeps_the_newest_k(gcs, bucket):
    ns = _fresh()
    store = GcsCheckpointStore(gcs, URL, run="run1")
    with checkpointed("run1", save=["model"], namespace=ns, every="1h", keep=2,
                      store=store) as ckpt:  # fmt: skip
        for _ in ckpt.range(5):
            ckpt.wait()
            ckpt.save()
    names = _names(gcs)
    manifests = [n for n in names if n.startswith("manifest-")]
    assert [m[:18] for m in manifests] == ["manifest-000000004", "manifest-000000005"]
    tags = {m[19:27] for m in manifests}
    assert {n.split("/")[0][15:] for n in names if n.startswith("step-")} == tags


def test_a_damaged_checkpoint_is_skipped_for_the_one_before(gcs, bucket, tmp_path):
    ns = _fresh()
    store = GcsCheckpointStore(gcs, URL, run="run1")
    with checkpointed("run1", save=["model"], namespace=ns, every="1h", store=store) as ckpt:
        for _ in ckpt.range(2):
            ckpt.wait()
            ckpt.save()
    newest = [n for n in _names(gcs) if n.startswith("step-000000002-")]
    bucket.blob(f"ckpt/run1/{newest[0]}").upload_from_string(b"overwritten")
    restored = GcsCheckpointStore(gcs, URL, run="run1").load_newest(str(tmp_path / "s"), accept_any)
    assert restored is not None and restored.manifest.step == 1
    assert len(restored.skipped) == 1 and "manifest-000000002-" in restored.skipped[0]


def test_a_manifest_naming_objects_outside_its_checkpoint_is_skipped(gcs, bucket, tmp_path):
    bucket.blob("secret/key.txt").upload_from_string(b"not a blob")
    secret = bucket.get_blob("secret/key.txt")
    doc = {
        "format": 1, "run": "run1", "step": 7, "created": 1.0, "versions": {},
        "blobs": [{"name": "values.json", "size": secret.size, "md5": "0" * 32,
                   "file_id": f"secret/key.txt#{secret.generation}"}],
    }  # fmt: skip
    bucket.blob("ckpt/run1/manifest-000000007-0badf00d.json").upload_from_string(
        json.dumps(doc).encode()
    )
    store = GcsCheckpointStore(gcs, URL, run="run1")
    assert store.load_newest(str(tmp_path / "s"), accept_any) is None
    (why,) = store.skipped_without_restore()
    assert "not a blob of its own" in why


def test_checkpointed_to_a_bucket_holds_the_run_and_resumes(gcs, bucket):
    from colab_magics.checkpoint.session import CheckpointUsageError

    ns = _fresh()
    with checkpointed("run1", save=["model", "losses"], namespace=ns, to=URL) as ckpt:
        for step in ckpt.range(3):
            ns["losses"].append(step)
            assert f"lease-{ckpt.store.lease.token}" in _names(gcs)
            if step == 0:
                with (
                    pytest.raises(CheckpointUsageError, match="in use by another runtime"),
                    checkpointed("run1", save=["model"], namespace=_fresh(), to=URL),
                ):
                    pass
    assert not [n for n in _names(gcs) if n.startswith("lease-")]  # released at the end
    again = {**_fresh(), "losses": []}
    with checkpointed("run1", save=["model", "losses"], namespace=again, to=URL) as ckpt:
        assert ckpt.restored_from is not None and ckpt.restored_from.step == 3
    assert again["losses"] == [0, 1, 2]
    with (
        pytest.raises(CheckpointUsageError, match="--dir works with Drive only"),
        checkpointed("run1", directory="x", namespace={}, to=URL),
    ):
        pass
