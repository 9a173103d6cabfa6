"""``--dir`` as checkpoint units, against the emulator: what counts as whole, what is restored,
what is deleted. The frameworks' own recipes run in real kernels in the other files here."""

from __future__ import annotations

import json
import os

import pytest

from colab_magics import checkpointed
from colab_magics.checkpoint.dir_units import UnitManifest, UnitStore
from colab_magics.checkpoint.folder import FolderSync
from colab_magics.checkpoint.manifest import ManifestError
from colab_magics.connection import use_client
from colab_magics.progress import FAILED, Progress
from tests.trainers.driver import units_on_drive

REMOTE = "colab_magics/checkpoints/{}/dir"


@pytest.fixture
def runtime(client, tmp_path, monkeypatch):
    """A working directory standing for a runtime's disk, with Drive connected."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLAB_MAGICS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("COLAB_MAGICS_LEASE_SECONDS", "5")
    previous = use_client(client)
    yield tmp_path
    use_client(previous)


def _write(path: str, text: str = "x") -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _hf_checkpoint(out: str, step: int, best: str | None = None) -> str:
    folder = os.path.join(out, f"checkpoint-{step}")
    _write(os.path.join(folder, "model.safetensors"), f"weights {step}")
    _write(os.path.join(folder, "trainer_state.json"), json.dumps({"best_model_checkpoint": best}))
    return folder


def _sync(client, local: str, run: str, tmp_path, **kw) -> FolderSync:
    sync = FolderSync(
        local, REMOTE.format(run), client=client, progress=Progress(run), run=run,
        staging=str(tmp_path / "staging" / run), **kw,
    )  # fmt: skip
    return sync


def test_a_polled_folder_without_its_marker_is_not_a_checkpoint(runtime, client):
    with checkpointed("cli", directory="out"):
        _hf_checkpoint("out", 1)
        _write("out/checkpoint-2/model.safetensors", "half written")  # no trainer_state.json
    assert sorted(units_on_drive(client, "cli")) == ["checkpoint-1"]

    os.rename("out", "old-disk")
    with checkpointed("cli", directory="out") as ckpt:
        assert ckpt.resume_path == os.path.join("out", "checkpoint-1")
    assert sorted(os.listdir("out")) == ["checkpoint-1"]


def test_a_folder_that_disappears_is_deleted_on_drive_not_an_error(runtime, client):
    """Keras's ``BackupAndRestore.on_train_end`` removes its whole backup folder."""
    with checkpointed("gone", directory="backup"):
        _write("backup/training_metadata.json", '{"epoch": 3}')
        _write("backup/latest.weights.h5", "w")
    (backup,) = units_on_drive(client, "gone").values()  # the folder is one checkpoint
    assert backup.unit == "." and len(backup.files) == 2
    progress = Progress("gone")
    with checkpointed("gone", directory="backup", progress=progress):
        import shutil

        shutil.rmtree("backup")
    assert progress.state != FAILED and not progress.get("error")
    assert units_on_drive(client, "gone") == {}


def test_fresh_deletes_the_trainer_checkpoints_and_restores_none(runtime, client):
    with checkpointed("again", directory="out"):
        _hf_checkpoint("out", 5)
    os.rename("out", "old-disk")
    with checkpointed("again", directory="out", fresh=True) as ckpt:
        assert ckpt.resume_path is None and os.listdir("out") == []
    assert units_on_drive(client, "again") == {}


def test_a_first_run_has_no_resume_path(runtime):
    with checkpointed("first", directory="out") as ckpt:
        assert ckpt.resume_path is None


def test_the_panel_turns_red_when_the_cell_raises(runtime, client):
    progress = Progress("raises")
    with (
        pytest.raises(ZeroDivisionError),
        checkpointed("raises", directory="out", progress=progress),
    ):
        _hf_checkpoint("out", 1)
        1 / 0  # noqa: B018
    assert progress.state == FAILED
    assert sorted(units_on_drive(client, "raises")) == ["checkpoint-1"]  # what was whole


def test_a_hook_without_dir_is_a_one_line_error(runtime):
    with checkpointed("nodir", save={"x": [1]}) as ckpt, pytest.raises(ValueError, match="--dir"):
        ckpt.hf_callback()


def test_the_newest_hooked_checkpoint_and_the_best_one_are_restored(client, tmp_path):
    """Hugging Face keeps the best checkpoint beside the newest (``load_best_model_at_end``):
    its ``trainer_state.json`` names it as ``best_model_checkpoint``."""
    first = str(tmp_path / "a" / "out")
    sync = _sync(client, first, "best", tmp_path)
    sync.restore()
    sync.start()
    sync.use_hooks("hf")
    for step, best in ((1, None), (2, "out/checkpoint-1"), (3, "out/checkpoint-1")):
        sync.saved(sync.unit_of(_hf_checkpoint(first, step, best)))
    assert sync.finish()
    assert sorted(units_on_drive(client, "best")) == [f"checkpoint-{n}" for n in (1, 2, 3)]

    second = str(tmp_path / "b" / "out")
    sync = _sync(client, second, "best", tmp_path)
    sync.restore()
    assert sync.resume_path == os.path.join(second, "checkpoint-3")
    assert sorted(os.listdir(second)) == ["checkpoint-1", "checkpoint-3"]
    sync.start()
    sync.use_hooks("hf")
    sync.saved(sync.unit_of(_hf_checkpoint(second, 4, "out/checkpoint-1")))
    assert sync.finish()
    # checkpoint-2 was neither restored nor kept by the trainer: gone once 4 is confirmed.
    assert sorted(units_on_drive(client, "best")) == [f"checkpoint-{n}" for n in (1, 3, 4)]


def test_keep_bounds_the_trainer_checkpoints_on_drive_and_the_panel_says_which(client, tmp_path):
    local = str(tmp_path / "out")
    sync = _sync(client, local, "kept", tmp_path, keep=2)
    messages: list[str] = []
    sync.progress.subscribe(lambda p: messages.append(p.get("message") or ""))
    sync.restore()
    sync.start()
    sync.use_hooks("hf")
    for step in range(1, 5):
        sync.saved(sync.unit_of(_hf_checkpoint(local, step)))
    assert sync.finish()
    assert sorted(units_on_drive(client, "kept")) == ["checkpoint-3", "checkpoint-4"]
    shown = "checkpoint-2 confirmed on Drive, checkpoint-3 uploading (2 files)"
    assert any(m.startswith(shown) for m in messages), messages
    assert sync.progress.get("message") == "checkpoint-4 confirmed on Drive"
    assert sync.progress.get("confirmed_step") == 4


def test_the_marker_file_is_uploaded_last(client, tmp_path):
    local = str(tmp_path / "out")
    folder = _hf_checkpoint(local, 7)
    for name in ("zz.bin", "a.bin", "optimizer.pt"):
        _write(os.path.join(folder, name))
    store = UnitStore(client, REMOTE.format("order"), run="order")
    from colab_magics.checkpoint.dir_units import unit_files

    manifest = store.commit(
        "checkpoint-7", folder, unit_files(folder), last=lambda n: n == "trainer_state.json"
    )
    assert manifest.files[-1].path == "trainer_state.json"


@pytest.mark.parametrize("path", ["../escape", "/abs", "a/../../b", "a//b", ""])
def test_a_unit_manifest_naming_a_path_outside_the_folder_is_refused(path):
    document = {
        "format": 1,
        "run": "r",
        "unit": "checkpoint-1",
        "created": 1.0,
        "files": [{"path": path, "size": 1, "md5": "0" * 32, "file_id": "abc"}],
    }
    if path == "":  # a folder unit's file must have a name; "" only for a one-file unit
        document["files"].append(dict(document["files"][0], path="x"))
    with pytest.raises(ManifestError):
        UnitManifest.from_json(json.dumps(document).encode(), tag="t", manifest_id="m")


def test_a_folder_rewritten_faster_than_it_uploads_ends_as_last_written(client, tmp_path):
    """Keras's ``BackupAndRestore`` rewrites one folder at every backup: a backup waiting to go
    up is replaced by the newer one, and Drive ends with the last."""
    local = str(tmp_path / "backup")
    sync = _sync(client, local, "rewritten", tmp_path)
    sync.restore()
    sync.start()
    sync.use_hooks("keras")
    for epoch in range(1, 6):
        _write(os.path.join(local, "latest.weights.h5"), f"weights {epoch}")
        _write(os.path.join(local, "training_metadata.json"), json.dumps({"epoch": epoch}))
        sync.saved(sync.unit_of(local))
    assert sync.finish()
    (backup,) = units_on_drive(client, "rewritten").values()
    (metadata,) = [f for f in backup.files if f.path == "training_metadata.json"]
    assert json.loads(client.read_bytes(client.file(metadata.file_id))) == {"epoch": 5}
    assert backup.files[-1] == metadata  # read first on resume, so uploaded last
    assert not os.path.exists(tmp_path / "staging" / "rewritten" / "dir-units")  # no copy left
