"""The first consistency check of many folders: listed in parallel, same answer, with progress.

Drive lists at most 1,000 files a page (``pageSize``, files.list reference:
https://developers.google.com/drive/api/reference/rest/v3/files/list); a folder of more takes
several pages, fetched one after another with ``pageToken``.
"""

from __future__ import annotations

import os
import time

import pytest

from colab_magics.drive import DriveClient, DriveError, RetryPolicy
from colab_magics.drive.service import token_credentials
from colab_magics.emulator import start_emulator
from colab_magics.emulator.records import NewFile
from colab_magics.guard import Guard
from colab_magics.guard.mountindex import DriveFolders
from colab_magics.progress import Progress

AN_HOUR_AGO = time.time() - 3600
# Class folders of uneven sizes: one takes three pages, some are empty.
SIZES = [2300, 0, 7, 1, 40, 0, 13, 999, 1000, 3, 25, 2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """An emulator whose ``data/`` holds class folders of SIZES files (some names repeated,
    a Google Doc, a trashed file), a mount folder showing the same names, and a client."""
    tmp_path = tmp_path_factory.mktemp("dataset")
    handle = start_emulator(tmp_path / "drive")
    mount = tmp_path / "MyDrive"
    client = DriveClient(
        handle.url, token_credentials(handle.token), mount_root=str(mount), rate=None,
        policy=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02), workers=4,
        timeout=30,
    )  # fmt: skip
    store = handle.app.store
    folders = []
    for i, size in enumerate(SIZES):
        folder = client.ensure_folder(f"data/c{i:02d}")
        folders.append(folder)
        local = mount / "data" / folder.name
        local.mkdir(parents=True)
        for k in range(size):
            name = f"img{k:05d}.jpg"
            store.create(NewFile(name=name, parents=[folder.id]), None)
            if k % 97 == 0:  # a duplicate name: Drive allows it
                store.create(NewFile(name=name, parents=[folder.id]), None)
            (local / name).touch()
            os.utime(local / name, (AN_HOUR_AGO, AN_HOUR_AGO))
    doc = NewFile(name="notes", mime_type="application/vnd.google-apps.document")
    doc.parents = [folders[2].id]
    store.create(doc, None)
    gone = client.upload(b"x", "data/c03/gone.jpg").file
    files = client.transport.files
    client.transport.execute(lambda: files.update(fileId=gone.id, body={"trashed": True}))
    handle.data = mount / "data"  # type: ignore[attr-defined]
    yield handle, client, folders
    client.close()
    handle.stop()


def _index(folders: DriveFolders, ids: list[str]) -> dict[str, dict[str, list[str]]]:
    """Every listed child, duplicates included, by folder and name."""
    return {
        i: {name: sorted(f.id for f in same) for name, same in folders._children[i].items()}
        for i in ids
    }


def test_parallel_listing_returns_exactly_the_sequential_index(dataset):
    """Listings that span pages and finish out of order (jitter; short and empty pages where
    the emulator makes them) give the same index as listing one folder after another, and
    cost the same pages when the pages are full."""
    handle, client, folders = dataset
    ids = [f.id for f in folders]
    one_by_one = DriveFolders(client)
    before = client.requests
    for i in ids:
        one_by_one.children(i)
    sequential_calls = client.requests - before
    before = client.requests
    DriveFolders(client, workers=4).prefetch(ids)
    assert client.requests - before == sequential_calls

    faults = {"jitter": 0.05, "seed": 7}
    if hasattr(handle.settings, "short_page_rate"):
        faults["short_page_rate"] = 0.3
    handle.settings.update(faults)
    try:
        parallel = DriveFolders(client, workers=4)
        parallel.prefetch(ids)
    finally:
        handle.settings.faults_off()

    assert _index(parallel, ids) == _index(one_by_one, ids)
    assert sum(len(v) for v in _index(parallel, ids)[ids[0]].values()) == 2300 + 24
    for i in ids:  # the names paths resolve to are the same too
        assert {n: f.id for n, f in parallel.children(i).items()} == {
            n: f.id for n, f in one_by_one.children(i).items()
        }
    before = client.requests
    parallel.prefetch(ids)  # all listed already: no call
    assert client.requests == before


def test_first_check_lists_in_parallel_and_reports_progress(dataset):
    """The guard's first check of ``data`` with its class folders: progress events arrive
    while it runs, naming folders and files listed; a re-check after changes costs <= 2 calls."""
    handle, client, folders = dataset
    guard = Guard(client, handle.data.parent, since=time.time() - 60, max_age=0)
    progress = Progress("Drive guard")
    seen: list[dict] = []
    progress.subscribe(lambda p: seen.append(p.snapshot()))
    guard.folders.progress = progress

    findings = guard.check_paths([handle.data], depth=1)

    assert not [f for f in findings if f.stops], findings
    assert [s["folders_done"] for s in seen] == list(range(1, len(SIZES) + 1))
    assert {s["folders_total"] for s in seen} == {len(SIZES)}
    # Duplicates and the doc count; the trashed file is not listed.
    files = sum(SIZES) + sum(len(range(0, n, 97)) for n in SIZES) + 1
    assert seen[-1]["files_listed"] == files
    assert "listing Drive folders" in seen[-1]["message"]

    client.upload(b"new", f"data/{folders[4].name}/new.jpg")
    (handle.data / folders[4].name / "new.jpg").write_bytes(b"new")
    before = client.requests
    findings = guard.check_paths([handle.data], depth=1)
    assert client.requests - before <= 2
    assert not [f for f in findings if f.stops], findings


def test_a_listing_that_fails_raises_instead_of_hanging(dataset):
    """Every request failing: prefetch raises the Drive error once retries are spent."""
    handle, client, folders = dataset
    handle.settings.update({"error_rate": 1.0})
    try:
        with pytest.raises(DriveError):
            DriveFolders(client, workers=4).prefetch([f.id for f in folders])
    finally:
        handle.settings.faults_off()


def test_the_check_without_subfolders_lists_none_of_them(dataset):
    """Depth 0 lists ``data`` alone: prefetching is for folders the check will look at."""
    handle, client, folders = dataset
    guard = Guard(client, handle.data.parent, since=time.time() - 60, max_age=0)
    guard.check_paths([handle.data])
    assert not any(f.id in guard.folders._children for f in folders)
