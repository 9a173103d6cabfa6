"""Run folders whose names differ only in case are different runs, although Drive's ``name =``
query answers both (rclone's Drive backend, backend/drive/drive.go ``list``, re-checks the case
of every result because "the `=` operator is case insensitive")."""

from __future__ import annotations

import numpy as np

from colab_magics.checkpoint.api import checkpointed
from colab_magics.checkpoint.drive_store import DriveCheckpointStore
from colab_magics.drive import connect


def accept_any(folder: str, manifest) -> str:
    """A restore callback that takes any checkpoint whose blobs verified."""
    return "restored"


def _run(client, folder: str, steps: int, value: float) -> None:
    ns = {"w": np.full(3, value)}
    store = DriveCheckpointStore(client, folder, run="r")
    with checkpointed("r", save=["w"], namespace=ns, every="1", store=store) as ckpt:
        for _ in ckpt.range(steps):
            ckpt.wait()


def test_checkpoint_folders_that_differ_in_case_stay_apart(emulator, client, tmp_path):
    _run(client, "ckpts/Run", 3, 1.0)
    fresh = connect(url=emulator.url, token=emulator.token)  # no cached ids: listings only
    try:
        _run(fresh, "ckpts/run", 2, 2.0)
        upper = DriveCheckpointStore(fresh, "ckpts/Run", run="r").load_newest(
            str(tmp_path / "a"), accept_any
        )
        lower = DriveCheckpointStore(fresh, "ckpts/run", run="r").load_newest(
            str(tmp_path / "b"), accept_any
        )
        assert upper is not None and lower is not None
        assert (upper.manifest.step, lower.manifest.step) == (3, 2)
        assert fresh.stat("ckpts/Run").id != fresh.stat("ckpts/run").id
        assert sorted(f.name for f in fresh.listdir("ckpts")) == ["Run", "run"]
    finally:
        fresh.close()
