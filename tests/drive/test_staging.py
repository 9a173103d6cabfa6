"""Staging folders for temporary files: exclusive, locked while in use, reaped when left."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from colab_magics.drive.staging import LOCK, PREFIX, Staging, is_staging, reap
from tests.drive.conftest import make_client


def test_staging_folder_is_hidden_private_and_removed_at_the_end(tmp_path):
    with Staging(tmp_path, avoid={"x"}) as staging:
        name = os.path.basename(staging.path)
        assert name.startswith(PREFIX) and len(name) == len(PREFIX) + 16
        assert is_staging(staging.path)
        assert os.stat(staging.path).st_mode & 0o777 == 0o700
        first, out = staging.create()
        with out:
            out.write(b"data")
        second, out2 = staging.create()
        out2.close()
        assert first != second and os.path.dirname(first) == staging.path
    assert os.listdir(tmp_path) == []


def test_create_never_writes_through_a_name_it_did_not_make(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    with Staging(tmp_path) as staging:
        os.symlink(victim, os.path.join(staging.path, "0"))  # planted where the first would go
        path, out = staging.create()
        with out:
            out.write(b"temporary")
        assert os.path.basename(path) == "1"
    assert victim.read_bytes() == b"keep"


def test_reap_removes_only_what_no_live_process_holds(tmp_path):
    live = Staging(tmp_path)
    try:
        dead = tmp_path / f"{PREFIX}{'0' * 16}"  # as a killed process leaves one
        dead.mkdir()
        (dead / LOCK).write_bytes(b"")
        (dead / "0").write_bytes(b"half a download")
        never_locked = tmp_path / f"{PREFIX}{'1' * 16}"
        never_locked.mkdir()
        kept = tmp_path / f"{PREFIX}{'2' * 16}"  # a name the operation itself writes
        kept.mkdir()
        (kept / LOCK).write_bytes(b"")
        not_ours = tmp_path / f"{PREFIX}short"
        not_ours.mkdir()
        (not_ours / LOCK).write_bytes(b"")
        assert reap(tmp_path, keep={kept.name}) == 1
        assert sorted(os.listdir(tmp_path)) == sorted(
            [os.path.basename(live.path), kept.name, not_ours.name]
        )
        assert not is_staging(not_ours)
    finally:
        live.close()


def test_a_staging_folder_held_by_another_process_is_left_alone(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from colab_magics.drive.staging import Staging; "
            "s = Staging(sys.argv[1]); print(s.path, flush=True); sys.stdin.read()",
            str(tmp_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        path = holder.stdout.readline().strip()
        assert reap(tmp_path) == 0 and os.path.isdir(path)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert reap(tmp_path) == 1 and os.listdir(tmp_path) == []  # its holder has gone


def test_download_into_a_folder_on_another_file_system(emulator, tmp_path):
    """The staging folder sits at the top of a pull; a subfolder that is another file system
    (here a link to tmpfs) cannot take a rename from it, so the file is moved across."""
    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    from colab_magics.sync import pull

    client = make_client(emulator)
    elsewhere = os.path.join("/dev/shm", f"colab_magics-test-{os.getpid()}-{tmp_path.name}")
    os.makedirs(elsewhere)
    try:
        client.upload(b"top", "d/a.txt")
        client.upload(b"inside", "d/sub/b.txt")
        out = tmp_path / "out"
        out.mkdir()
        os.symlink(elsewhere, out / "sub")
        report = pull("d", out, client=client, cache_dir=tmp_path / "cache")
        assert report.ok, report.errors
        assert (out / "a.txt").read_bytes() == b"top"
        assert os.listdir(elsewhere) == ["b.txt"]
        assert (out / "sub" / "b.txt").read_bytes() == b"inside"
        assert sorted(os.listdir(out)) == ["a.txt", "sub"]
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)
        client.close()
