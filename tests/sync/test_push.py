"""push: a tree reaches Drive verified, a second push sends nothing, deletes and dry runs."""

from __future__ import annotations

import pytest

from colab_magics.progress import Progress
from colab_magics.sync import SyncAborted, SyncError, push
from tests.sync.conftest import TREE, drive_tree, make_tree


def test_push_uploads_tree_and_second_push_sends_nothing(client, tmp_path, cache_dir):
    src = make_tree(tmp_path / "src")
    progress = Progress("push")
    report = push(src, "runs/data", client=client, progress=progress, cache_dir=cache_dir)
    assert report.ok, report.errors
    assert report.uploaded == len(TREE) and report.skipped == 0
    assert report.bytes == sum(len(v) for v in TREE.values())
    assert drive_tree(client, "runs/data") == TREE
    assert client.stat("runs/data/void").is_folder  # empty folders too
    assert progress.state == "done" and progress.get("files_done") == len(TREE)
    assert progress.get("message").startswith(f"did: uploaded {len(TREE)};")
    assert progress.get("bytes_done") == progress.get("bytes_total") == report.bytes

    before = client.requests
    again = push(src, "runs/data", client=client, cache_dir=cache_dir)
    assert again.ok and again.uploaded == 0 and again.skipped == len(TREE)
    assert again.hashed == 0  # every md5 came from the cache, none re-read
    # Resolve the folder and list each of its 6 folders once; nothing else.
    assert client.requests - before == again.api_calls <= 10


def test_changed_file_is_replaced_in_place_and_others_skipped(client, tmp_path, cache_dir):
    src = make_tree(tmp_path / "src")
    push(src, "d", client=client, cache_dir=cache_dir)
    old_id = client.stat("d/sub/b.txt").id
    (src / "sub/b.txt").write_bytes(b"BETA" * 100)  # same size, other bytes
    report = push(src, "d", client=client, cache_dir=cache_dir)
    assert (report.uploaded, report.replaced, report.skipped) == (1, 1, len(TREE) - 1)
    assert client.stat("d/sub/b.txt").id == old_id
    assert client.read_bytes("d/sub/b.txt") == b"BETA" * 100


def test_push_skips_by_md5_without_a_cache(client, tmp_path, cache_dir):
    """A push killed before it saved anything: the next run finds Drive's copies by md5."""
    src = make_tree(tmp_path / "src")
    push(src, "d", client=client, cache_dir=cache_dir)
    report = push(src, "d", client=client, cache_dir=tmp_path / "fresh-cache")
    assert report.uploaded == 0 and report.skipped == len(TREE)
    assert report.hashed == sum(1 for v in TREE.values())


def test_delete_removes_what_is_gone_locally_in_one_batch(client, tmp_path, cache_dir):
    src = make_tree(tmp_path / "src")
    push(src, "d", client=client, cache_dir=cache_dir)
    (src / "a.txt").unlink()
    for p in sorted((src / "sub").rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    (src / "sub").rmdir()
    kept = push(src, "d", client=client, cache_dir=cache_dir)
    assert kept.deleted == 0 and client.exists("d/a.txt")  # without delete=True nothing goes

    report = push(src, "d", client=client, delete=True, cache_dir=cache_dir)
    assert report.ok and report.deleted == 2  # a.txt and the folder sub (with its contents)
    assert not client.exists("d/a.txt") and not client.exists("d/sub")
    assert set(drive_tree(client, "d")) == set(TREE) - {"a.txt"} - {
        k for k in TREE if k.startswith("sub/")
    }


def test_dry_run_plans_and_touches_nothing(client, tmp_path, cache_dir):
    src = make_tree(tmp_path / "src")
    push(src, "d", client=client, cache_dir=cache_dir)
    (src / "new.txt").write_bytes(b"new")
    (src / "a.txt").write_bytes(b"changed!")
    (src / "empty.bin").unlink()
    report = push(src, "d", client=client, delete=True, dry_run=True, cache_dir=cache_dir)
    assert sorted(report.plan) == [
        ("delete", "empty.bin", 0),
        ("replace", "a.txt", 8),
        ("upload", "new.txt", 3),
    ]
    assert report.bytes == 11 and report.dry_run
    assert report.plan_lines() == [
        "replace        8 B  a.txt",
        "delete         0 B  empty.bin",
        "upload         3 B  new.txt",
    ]
    assert report.summary() == "would: uploaded 2, replaced 1, deleted 1, skipped 5; 11 B"
    assert client.read_bytes("d/a.txt") == b"alpha"
    assert not client.exists("d/new.txt") and client.exists("d/empty.bin")
    fresh = push(src, "nowhere/yet", client=client, dry_run=True, cache_dir=cache_dir)
    assert fresh.uploaded == len(TREE) and not client.exists("nowhere")


def test_single_file_push_to_a_path_and_into_a_folder(client, tmp_path, cache_dir):
    f = tmp_path / "model.pt"
    f.write_bytes(b"weights")
    push(f, "ck/best.pt", client=client, cache_dir=cache_dir)
    assert client.read_bytes("ck/best.pt") == b"weights"
    push(f, "ck/", client=client, cache_dir=cache_dir)
    assert client.read_bytes("ck/model.pt") == b"weights"
    again = push(f, "ck/best.pt", client=client, cache_dir=cache_dir)
    assert again.uploaded == 0 and again.skipped == 1


def test_duplicate_names_on_drive_are_reported_and_the_oldest_used(client, tmp_path, cache_dir):
    first = client.upload(b"alpha", "d/a.txt")
    second = client.upload(b"other", "d/a.txt", replace=False)  # Drive allows a second a.txt
    src = make_tree(tmp_path / "src", {"a.txt": b"alpha"}, dirs=())
    report = push(src, "d", client=client, cache_dir=cache_dir)
    assert report.skipped == 1 and report.uploaded == 0  # the oldest already matches
    assert report.duplicates == {"a.txt": [first.file.id, second.file.id]}


def test_bad_paths_are_clear_errors(client, tmp_path, cache_dir):
    with pytest.raises(SyncError, match="does not exist"):
        push(tmp_path / "missing", "d", client=client, cache_dir=cache_dir)
    client.upload(b"x", "afile")
    src = make_tree(tmp_path / "src", {"x": b"1"}, dirs=())
    with pytest.raises(SyncError, match="drive:afile is a file on Drive"):
        push(src, "afile", client=client, cache_dir=cache_dir)
    with pytest.raises(SyncError, match="not on Drive"):
        push(src, "/etc/elsewhere", client=client, cache_dir=cache_dir)


def test_single_file_push_never_deletes_its_neighbours(client, tmp_path, cache_dir):
    client.upload(b"keep me", "ck/other.pt")
    f = tmp_path / "model.pt"
    f.write_bytes(b"weights")
    report = push(f, "ck/", client=client, delete=True, cache_dir=cache_dir)
    assert report.uploaded == 1 and report.deleted == 0
    assert client.read_bytes("ck/other.pt") == b"keep me"


def test_delete_into_my_drive_itself_is_refused(client, tmp_path, cache_dir):
    client.upload(b"precious", "thesis.pdf")
    src = make_tree(tmp_path / "src", {"x": b"1"}, dirs=())
    with pytest.raises(SyncError, match="Refusing push with delete to My Drive"):
        push(src, "", client=client, delete=True, cache_dir=cache_dir)
    assert client.exists("thesis.pdf")


def test_killed_push_resumes_without_resending_or_duplicating(client, tmp_path, cache_dir):
    from tests.sync.test_pull import KillAfter

    data = {f"f{i:03}.bin": bytes([i]) * (100 + i) for i in range(40)}
    src = make_tree(tmp_path / "src", data, dirs=())
    with pytest.raises(KeyboardInterrupt):
        push(src, "d", client=client, jobs=4, progress=KillAfter(10), cache_dir=cache_dir)
    done = len(client.listdir("d"))
    assert 10 <= done <= 10 + 4  # the kill stops queued files; running ones end
    report = push(src, "d", client=client, jobs=4, cache_dir=cache_dir)
    assert report.skipped == done and report.uploaded == len(data) - done
    names = [f.name for f in client.listdir("d")]
    assert sorted(names) == sorted(data)  # each once: nothing was created twice
    # The killed run cached the md5s of what it had sent; only the files in flight when it
    # was killed (at most one per job) are hashed again.
    assert report.hashed <= 4


def test_push_again_before_drive_lists_the_new_files_makes_no_duplicates(
    client, emulator, tmp_path, cache_dir
):
    """Drive's listing lags behind writes: a re-run right after a push must not trust it alone."""
    import time

    emulator.settings.update({"listing_lag": 1.5})
    src = make_tree(tmp_path / "src")
    push(src, "d", client=client, cache_dir=cache_dir)
    again = push(src, "d", client=client, cache_dir=cache_dir)
    assert again.uploaded == 0 and again.skipped == len(TREE)
    time.sleep(1.6)
    seen = [rel for rel, f in client.walk("d") if not f.is_folder]
    assert sorted(seen) == sorted(TREE)  # each file once


def test_unreadable_local_folder_is_an_error_and_never_deleted_on_drive(
    client, tmp_path, cache_dir, monkeypatch
):
    import os

    src = make_tree(tmp_path / "src")
    push(src, "d", client=client, cache_dir=cache_dir)
    real_scandir = os.scandir

    def scandir(path):  # root may read anything, so deny one folder the way EACCES would
        if os.fspath(path).endswith("/sub"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr("colab_magics.sync.local.os.scandir", scandir)
    report = push(src, "d", client=client, delete=True, cache_dir=cache_dir)
    assert report.errors == {"sub": "cannot read this folder: Permission denied"}
    assert report.deleted == 0 and client.exists("d/sub/deeper/c.bin")
    with pytest.raises(SyncAborted, match="1 failed"):
        report.check()
