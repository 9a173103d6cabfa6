"""Pushes under injected faults complete and verify; a full Drive stops with the fix."""

from __future__ import annotations

import hashlib

import pytest

from colab_magics.progress import Progress
from colab_magics.sync import SyncAborted, pull, push
from tests.sync.conftest import make_tree, read_tree


def test_push_of_hundreds_of_files_under_faults_completes_and_verifies(
    client, emulator, tmp_path, cache_dir
):
    data = {
        f"d{i % 7}/f{i:03}.bin": hashlib.sha256(str(i).encode()).digest() * (i % 5)
        for i in range(300)
    }
    src = make_tree(tmp_path / "src", data, ())
    emulator.settings.update(
        {"error_rate": 0.1, "rate_limit_429": 0.02, "retry_after": 0.1, "seed": 7}
    )
    progress = Progress("push")
    report = push(src, "faulty", client=client, jobs=8, progress=progress, cache_dir=cache_dir)
    assert report.ok, report.errors
    assert report.uploaded == 300
    assert progress.get("retries") > 0  # faults were met and retried, not silently absent
    report = pull("faulty", tmp_path / "back", client=client, jobs=8, cache_dir=cache_dir)
    assert report.ok, report.errors
    emulator.settings.faults_off()
    assert read_tree(tmp_path / "back")[0] == data
    assert push(src, "faulty", client=client, cache_dir=cache_dir).uploaded == 0


def test_full_drive_stops_with_the_fix_and_a_rerun_continues(client, emulator, tmp_path, cache_dir):
    data = {f"f{i}.bin": bytes([i]) * 1000 for i in range(10)}
    src = make_tree(tmp_path / "src", data, ())
    emulator.settings.update({"quota_bytes": 4500})
    progress = Progress("push")
    with pytest.raises(SyncAborted, match="Drive is full") as info:
        push(src, "q", client=client, jobs=1, progress=progress, cache_dir=cache_dir)
    message = str(info.value)
    assert "%drive_quota --empty-trash" in message and "%drive_purge" in message
    assert info.value.report.uploaded == 4
    assert progress.state == "failed" and "%drive_quota" in progress.get("error")

    emulator.settings.update({"quota_bytes": None})
    report = push(src, "q", client=client, cache_dir=cache_dir)
    assert report.skipped == 4 and report.uploaded == 6
