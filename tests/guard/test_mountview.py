"""Pending mount writes, asked of the API, and flushing them without unmounting."""

from __future__ import annotations

import pytest

from colab_magics.guard.mountview import FlushTimeout, MountView, describe, runtime_started
from colab_magics.progress import DONE, Progress
from tests.guard.conftest import a_minute_ago


def test_runtime_started_is_in_the_past():
    import time

    assert 0 < runtime_started() < time.time()


def test_an_unsynced_write_is_pending_until_pushed_through_the_api(mounted):
    m = mounted(lag=30)
    (m.mount / "ck").mkdir()
    (m.mount / "ck" / "model.pt").write_bytes(b"w" * 1000)
    view = MountView(m.client, m.mount, since=a_minute_ago())

    [item] = view.pending()
    assert (item.mount_path, item.drive_path) == (str(m.mount / "ck/model.pt"), "ck/model.pt")
    assert (item.size, item.why) == (1000, "not on Drive")

    with pytest.raises(FlushTimeout, match=r"model\.pt") as err:
        view.flush(timeout=0.3, poll=0.05)
    assert [p.drive_path for p in err.value.pending] == ["ck/model.pt"]

    progress = Progress("flush")
    report = view.flush(push=True, progress=progress)
    assert report.pushed == ["ck/model.pt"] and report.bytes == 1000
    assert progress.state == DONE and progress.get("files_done") == 1
    assert m.client.read_bytes("ck/model.pt") == b"w" * 1000
    assert view.pending() == []
    assert view.pending([m.mount / "ck"]) == []


def test_size_and_md5_differences_are_reported(mounted):
    m = mounted(lag=30)
    m.upload({"a.bin": b"0123456789", "b.bin": b"same size!"})
    m.settle()
    view = MountView(m.client, m.mount, since=a_minute_ago())
    assert view.pending() == []  # what the mount downloaded matches Drive

    (m.mount / "a.bin").write_bytes(b"0123456789ab")
    (m.mount / "b.bin").write_bytes(b"SAME SIZE!")
    whys = {p.drive_path: p.why for p in view.pending()}
    assert whys == {"a.bin": "size differs 12 vs 10", "b.bin": "md5 differs"}
    # Only the paths asked about; files older than the runtime are not pending.
    assert [p.drive_path for p in view.pending([m.mount / "b.bin"])] == ["b.bin"]
    assert MountView(m.client, m.mount, since=2**40).pending() == []


def test_flush_waits_until_the_mount_has_synced(mounted):
    m = mounted(lag=0.5)
    (m.mount / "out").mkdir()
    for i in range(3):
        (m.mount / "out" / f"{i}.txt").write_bytes(b"x" * (i + 1))
    view = MountView(m.client, m.mount, since=a_minute_ago())
    assert len(view.pending()) == 3

    progress = Progress("flush")
    report = view.flush(timeout=20, poll=0.1, progress=progress)
    assert len(report.files) == 3 and report.pushed == [] and report.polls >= 2
    assert view.pending() == []
    assert m.client.read_bytes("out/2.txt") == b"xxx"
    assert progress.get("files_pending") == 0 and progress.get("bytes_done") == 6
    assert m.mount.is_dir()  # flushed without unmounting


def test_paths_outside_the_mount_or_missing_are_refused(mounted, tmp_path):
    m = mounted()
    view = MountView(m.client, m.mount)
    with pytest.raises(ValueError, match="not under the mount"):
        view.pending([tmp_path])
    with pytest.raises(FileNotFoundError, match="nope"):
        view.pending([m.mount / "nope"])


def test_describe_lists_what_is_pending(mounted):
    m = mounted(lag=30)
    for i in range(3):
        (m.mount / f"{i}.txt").write_bytes(b"z" * 2000)
    pending = MountView(m.client, m.mount, since=a_minute_ago()).pending()
    text = describe(pending, limit=2)
    assert text.startswith("3 files (6.0 KB) written to the mount in this runtime not on Drive")
    assert f"  {m.mount}/0.txt (2.0 KB, not on Drive)" in text
    assert text.endswith("... and 1 more")
    assert describe([]).startswith("Nothing pending")
