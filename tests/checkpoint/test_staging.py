"""Staging, the local scratch for snapshots: private to the user, never followed through a
link someone planted, and never left full of failed snapshots."""

from __future__ import annotations

import getpass
import os
import stat
import subprocess
import tempfile

import numpy as np
import pytest

from colab_magics.checkpoint.api import checkpointed
from colab_magics.checkpoint.drive_store import DriveCheckpointStore
from colab_magics.checkpoint.session import CheckpointUsageError
from colab_magics.progress import FAILED, Progress

RUN = "staged"
FOLDER = f"colab_magics/checkpoints/{RUN}"


def _store(client):
    return DriveCheckpointStore(client, FOLDER, run=RUN)


def _run(client, ns, steps=2, progress=None):
    with checkpointed(RUN, save=["w"], namespace=ns, every="1", store=_store(client),
                      progress=progress) as ckpt:  # fmt: skip
        for _ in ckpt.range(steps):
            ns["w"] += 1
    return ckpt


@pytest.fixture
def shared_tmp(tmp_path, monkeypatch):
    """A temp dir like /tmp: what every user of the machine can write; no staging setting."""
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.delenv("COLAB_MAGICS_STAGING")
    return shared


def test_the_default_staging_is_private_to_the_user(client, shared_tmp):
    ckpt = _run(client, {"w": np.zeros(3)})
    assert ckpt.progress.get("confirmed_step") == 2
    (mine,) = shared_tmp.iterdir()
    for folder in (mine, mine / RUN):
        info = os.lstat(folder)
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
        assert info.st_uid == os.geteuid()
    assert ckpt.staging == str(mine / RUN)

    os.chmod(mine, 0o777)  # made readable by others some other way: taken back
    _run(client, {"w": np.zeros(3)}, steps=3)
    assert stat.S_IMODE(os.lstat(mine).st_mode) == 0o700


def test_a_link_planted_where_staging_would_go_is_not_followed(client, shared_tmp, tmp_path):
    """Another user of the machine links every name staging could take to a folder of the
    victim's: nothing in it may be written or removed."""
    victim = tmp_path / "victim"
    for step in range(4):
        (victim / RUN / f"step-{step}").mkdir(parents=True)
        (victim / RUN / f"step-{step}" / "precious.txt").write_text("keep me")
    (victim / RUN / "restore").mkdir()
    for name in ("colab_magics-staging", f"colab_magics-{os.geteuid()}",
                 f"colab_magics-{getpass.getuser()}"):  # fmt: skip
        (shared_tmp / name).symlink_to(victim)
    before = sorted(str(p.relative_to(victim)) for p in victim.rglob("*"))

    with pytest.raises(CheckpointUsageError) as refused:
        _run(client, {"w": np.zeros(3)})
    message = str(refused.value)
    assert "\n" not in message and "symbolic link" in message and str(shared_tmp) in message
    assert sorted(str(p.relative_to(victim)) for p in victim.rglob("*")) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user takes root")
def test_a_staging_folder_of_another_user_is_refused(client, shared_tmp):
    theirs = shared_tmp / f"colab_magics-{os.geteuid()}"
    theirs.mkdir(mode=0o777)
    os.chown(theirs, 65534, 65534)
    with pytest.raises(CheckpointUsageError, match="belongs to another user"):
        _run(client, {"w": np.zeros(3)})
    assert list(theirs.iterdir()) == []


def test_snapshots_a_killed_runtime_left_are_cleared(client, tmp_path):
    staging = tmp_path / "staging" / RUN
    (staging / "step-7").mkdir(parents=True)
    (staging / "step-7" / "arrays.npz").write_bytes(b"\0" * 1000)
    (staging / "restore" / "0badc0de").mkdir(parents=True)
    _run(client, {"w": np.zeros(3)})
    assert list(staging.iterdir()) == []


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """Staging on a real 256 KiB filesystem (a tmpfs), so writes fail with ENOSPC."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"mounting a small tmpfs is not allowed here: {done.stderr.strip()}")
    monkeypatch.setenv("COLAB_MAGICS_STAGING", str(mount))
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_snapshot_that_fills_the_disk_is_removed_and_the_folder_named(client, small_disk):
    progress, errors = Progress(RUN), []
    progress.subscribe(lambda p: errors.append(p.get("error")) if p.get("error") else None)
    ns = {"w": np.zeros(64 * 1024)}  # 512 KiB: more than the disk holds
    _run(client, ns, steps=3, progress=progress)
    assert progress.state == FAILED
    staging = small_disk / RUN
    assert errors and all(f"no space left for snapshots in {staging}" in e for e in errors), errors
    assert list(staging.iterdir()) == []  # nothing half-written left behind
    assert ns["w"][0] == 3  # training went on


def test_a_restore_that_fills_the_disk_names_the_folder_and_leaves_nothing(
    client, small_disk, monkeypatch, tmp_path
):
    monkeypatch.setenv("COLAB_MAGICS_STAGING", str(tmp_path / "roomy"))
    _run(client, {"w": np.zeros(64 * 1024)})
    monkeypatch.setenv("COLAB_MAGICS_STAGING", str(small_disk))
    with pytest.raises(OSError, match=f"no space left for snapshots in {small_disk / RUN}"):
        _run(client, {"w": np.zeros(64 * 1024)})
    assert list((small_disk / RUN).iterdir()) == []
