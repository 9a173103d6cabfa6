"""Watcher: new and changed files reach Drive in the background; stop(flush) leaves none."""

from __future__ import annotations

import time

import pytest

from colab_magics.drive import DriveError
from colab_magics.progress import Progress
from colab_magics.sync import SyncAborted, Watcher, push
from tests.sync.conftest import make_tree


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def content(client, path):
    """The file's bytes, or None while it is missing or being replaced (a read racing the
    watcher's upload may see the old size and ask for a range that no longer exists)."""
    try:
        return client.read_bytes(path)
    except DriveError:
        return None


def test_watch_pushes_new_and_changed_files(client, tmp_path, cache_dir):
    logs = make_tree(tmp_path / "logs", {"old.txt": b"already there"}, ())
    push(logs, "run/logs", client=client, cache_dir=cache_dir)
    progress = Progress("watch")
    watcher = Watcher(
        logs, "run/logs", client=client, interval=0.1, progress=progress, cache_dir=cache_dir
    ).start()
    try:
        (logs / "sub").mkdir()
        (logs / "sub/new.txt").write_bytes(b"epoch 1")
        wait_for(lambda: content(client, "run/logs/sub/new.txt") == b"epoch 1")
        (logs / "old.txt").write_bytes(b"changed")
        wait_for(lambda: content(client, "run/logs/old.txt") == b"changed")
        (logs / "last.txt").write_bytes(b"written just before the end")
    finally:
        report = watcher.stop(flush=True)
    assert client.read_bytes("run/logs/last.txt") == b"written just before the end"
    assert watcher.pending() == [] and not watcher.running
    assert report.ok and report.skipped == 1  # old.txt was on Drive already at start
    # Three files; a round may also have caught one half-written (then it goes again).
    assert report.uploaded >= 3 and progress.get("pushed") == report.uploaded


def test_pending_lists_what_is_not_pushed_yet(client, tmp_path, cache_dir):
    logs = make_tree(tmp_path / "logs", {"a.txt": b"a"}, ())
    watcher = Watcher(logs, "w", client=client, interval=60, cache_dir=cache_dir)
    assert watcher.pending() == ["a.txt"]
    watcher.run_once()
    assert watcher.pending() == []
    (logs / "b.txt").write_bytes(b"b")
    assert watcher.pending() == ["b.txt"]
    watcher.stop(flush=True)
    assert client.read_bytes("w/b.txt") == b"b"


def test_errors_are_reported_and_the_watcher_keeps_going(client, emulator, tmp_path, cache_dir):
    logs = make_tree(tmp_path / "logs", {"a.txt": b"a"}, ())
    progress = Progress("watch")
    watcher = Watcher(
        logs, "w", client=client, interval=0.1, progress=progress, cache_dir=cache_dir
    ).start()
    try:
        wait_for(lambda: client.exists("w/a.txt"))
        emulator.settings.update({"quota_bytes": 1})  # Drive is full
        (logs / "b.txt").write_bytes(b"b" * 100)
        wait_for(lambda: progress.get("errors", 0) > 0)
        assert "b.txt" in progress.get("error") and watcher.running
        assert watcher.pending() == ["b.txt"]
        emulator.settings.update({"quota_bytes": None})
        wait_for(lambda: content(client, "w/b.txt") == b"b" * 100)
        wait_for(lambda: progress.get("errors") == 0)
    finally:
        watcher.stop(flush=True)


def test_stop_with_flush_raises_when_files_cannot_be_pushed(client, emulator, tmp_path, cache_dir):
    logs = make_tree(tmp_path / "logs", {"a.txt": b"a"}, ())
    watcher = Watcher(logs, "w", client=client, interval=60, cache_dir=cache_dir)
    watcher.run_once()
    (logs / "b.txt").write_bytes(b"b" * 100)
    emulator.settings.update({"quota_bytes": 1})
    with pytest.raises(SyncAborted, match="1 file\\(s\\) not on Drive.*b.txt"):
        watcher.stop(flush=True)


def test_watch_makes_a_missing_folder_and_refuses_a_file(client, tmp_path, cache_dir):
    from colab_magics.sync import SyncError

    watcher = Watcher(tmp_path / "logs", "w", client=client, interval=60, cache_dir=cache_dir)
    (tmp_path / "logs" / "epoch1.txt").write_bytes(b"loss 0.5")
    watcher.stop(flush=True)
    assert client.read_bytes("w/epoch1.txt") == b"loss 0.5"
    with pytest.raises(SyncError, match="is a file"):
        Watcher(tmp_path / "logs" / "epoch1.txt", "w", client=client)
