"""The simulated Colab mount: lagging uploads, lost pending writes, partial listings."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable

import pytest
from googleapiclient.http import MediaInMemoryUpload

from colab_magics.emulator import start_emulator
from colab_magics.emulator.mount import MountSimulator

LAG = 0.4


def wait_for(condition: Callable[[], object], timeout: float = 8.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


@pytest.fixture
def mounted(tmp_path):
    """An emulator with a mount at tmp_path/"mnt" (lag 0.4 s, at most 5 entries per folder)."""
    handle = start_emulator(
        tmp_path / "drive", mount=tmp_path / "mnt", mount_lag=LAG, mount_list_cap=5
    )
    try:
        yield handle
    finally:
        handle.stop()


def on_drive(drive, name: str, parent: str = "root") -> list[dict]:
    q = f"name = '{name}' and '{parent}' in parents and trashed = false"
    return drive.files().list(q=q, fields="files(id,name,md5Checksum,mimeType)").execute()["files"]


def make_folder(drive, name: str) -> str:
    body = {"name": name, "mimeType": "application/vnd.google-apps.folder"}
    return drive.files().create(body=body, fields="id").execute()["id"]


def upload(drive, name: str, data: bytes, parent: str = "root") -> str:
    media = MediaInMemoryUpload(data, mimetype="application/octet-stream")
    body = {"name": name, "parents": [parent]}
    return drive.files().create(body=body, media_body=media, fields="id").execute()["id"]


def test_a_local_write_reaches_drive_only_after_the_lag(mounted, make_drive, tmp_path):
    drive = make_drive(mounted)
    data = b"checkpoint bytes " * 1000
    start = time.monotonic()
    (tmp_path / "mnt" / "model.pt").write_bytes(data)
    assert mounted.mount.pending() == ["model.pt"]
    time.sleep(LAG / 2)
    assert on_drive(drive, "model.pt") == []
    found = wait_for(lambda: on_drive(drive, "model.pt"))
    assert time.monotonic() - start >= LAG
    assert [f["md5Checksum"] for f in found] == [hashlib.md5(data).hexdigest()]
    assert wait_for(lambda: mounted.mount.pending() == [])


def test_a_file_rewritten_within_the_lag_is_uploaded_once_with_the_last_content(
    mounted, make_drive, tmp_path
):
    drive = make_drive(mounted)
    target = tmp_path / "mnt" / "log.txt"
    for i in range(6):
        target.write_text(f"line {i}\n" * (i + 1))
        time.sleep(LAG / 4)
    found = wait_for(lambda: on_drive(drive, "log.txt"))
    assert len(found) == 1
    assert found[0]["md5Checksum"] == hashlib.md5(target.read_bytes()).hexdigest()


def test_what_is_pending_when_the_runtime_dies_is_lost(tmp_path, make_drive):
    handle = start_emulator(tmp_path / "drive", mount=tmp_path / "mnt", mount_lag=LAG)
    (tmp_path / "mnt" / "saved.bin").write_bytes(b"a")
    drive = make_drive(handle)
    assert wait_for(lambda: on_drive(drive, "saved.bin"))
    (tmp_path / "mnt" / "lost.bin").write_bytes(b"b" * 1000)
    handle.stop()
    time.sleep(LAG * 2)
    again = start_emulator(tmp_path / "drive")
    try:
        drive = make_drive(again)
        assert [f["name"] for f in drive.files().list().execute()["files"]] == ["saved.bin"]
    finally:
        again.stop()


def test_sync_now_pushes_at_once_and_stop_is_idempotent(tmp_path, make_drive):
    handle = start_emulator(tmp_path / "drive", mount=tmp_path / "mnt", mount_lag=60)
    try:
        drive = make_drive(handle)
        (tmp_path / "mnt" / "deep" / "er").mkdir(parents=True)
        (tmp_path / "mnt" / "deep" / "er" / "x.txt").write_text("x")
        (tmp_path / "mnt" / "y.txt").write_text("y")
        assert handle.mount.pending() == ["deep/er/x.txt", "y.txt"]
        time.sleep(0.5)
        assert drive.files().list().execute()["files"] == []
        handle.mount.sync_now()
        assert handle.mount.pending() == []
        (deep,) = on_drive(drive, "deep")
        assert deep["mimeType"] == "application/vnd.google-apps.folder"
        (er,) = on_drive(drive, "er", deep["id"])
        (x,) = on_drive(drive, "x.txt", er["id"])
        assert x["md5Checksum"] == hashlib.md5(b"x").hexdigest()
        assert len(on_drive(drive, "y.txt")) == 1
        handle.mount.stop()
        handle.mount.stop()
    finally:
        handle.stop()


def test_files_created_through_the_api_appear_in_the_mount(mounted, make_drive, tmp_path):
    drive = make_drive(mounted)
    folder = make_folder(drive, "data")
    upload(drive, "train.csv", b"a,b\n1,2\n", folder)
    local = tmp_path / "mnt" / "data" / "train.csv"
    assert wait_for(local.exists)
    assert local.read_bytes() == b"a,b\n1,2\n"
    # Not uploaded back: Drive still holds exactly one copy, unchanged.
    (before,) = (
        drive.files()
        .list(q=f"'{folder}' in parents", fields="files(modifiedTime)")
        .execute()["files"]
    )
    time.sleep(LAG * 2)
    assert mounted.mount.pending() == []
    (after,) = (
        drive.files()
        .list(q=f"'{folder}' in parents", fields="files(modifiedTime)")
        .execute()["files"]
    )
    assert after == before


def test_a_local_edit_updates_the_same_drive_file(mounted, make_drive, tmp_path):
    drive = make_drive(mounted)
    local = tmp_path / "mnt" / "state.json"
    local.write_text('{"step": 1}')
    (first,) = wait_for(lambda: on_drive(drive, "state.json"))
    local.write_text('{"step": 2}')
    new_md5 = hashlib.md5(b'{"step": 2}').hexdigest()
    assert wait_for(lambda: [f["md5Checksum"] for f in on_drive(drive, "state.json")] == [new_md5])
    assert on_drive(drive, "state.json")[0]["id"] == first["id"]


def test_changes_on_drive_reach_the_mount(mounted, make_drive, tmp_path):
    drive = make_drive(mounted)
    file_id = upload(drive, "notes.txt", b"v1")
    local = tmp_path / "mnt" / "notes.txt"
    assert wait_for(lambda: local.exists() and local.read_bytes() == b"v1")
    media = MediaInMemoryUpload(b"version 2", mimetype="text/plain")
    drive.files().update(fileId=file_id, media_body=media).execute()
    assert wait_for(lambda: local.exists() and local.read_bytes() == b"version 2")
    drive.files().update(fileId=file_id, body={"trashed": True}).execute()
    assert wait_for(lambda: not local.exists())


def test_a_local_delete_trashes_the_drive_file_after_the_lag(mounted, make_drive, tmp_path):
    drive = make_drive(mounted)
    file_id = upload(drive, "old.ckpt", b"old")
    local = tmp_path / "mnt" / "old.ckpt"
    assert wait_for(local.exists)
    local.unlink()
    assert wait_for(
        lambda: drive.files().get(fileId=file_id, fields="trashed").execute()["trashed"]
    )


def test_a_big_folder_shows_only_list_cap_entries(mounted, make_drive, tmp_path):
    drive = make_drive(mounted)
    folder = make_folder(drive, "images")
    local = tmp_path / "mnt" / "images"
    for i in reversed(range(8)):  # last names first: what the mount shows shifts as they come
        upload(drive, f"img{i}.png", bytes([i]) * 10, folder)
        time.sleep(0.05)
    expected = [f"img{i}.png" for i in range(5)]
    assert wait_for(lambda: local.exists() and sorted(p.name for p in local.iterdir()) == expected)
    time.sleep(LAG)
    assert sorted(p.name for p in local.iterdir()) == expected
    listed = drive.files().list(q=f"'{folder}' in parents", pageSize=100).execute()["files"]
    assert len(listed) == 8
    # What this runtime wrote itself stays visible, though Drive's listing would hide it.
    (local / "zz_mine.png").write_bytes(b"mine")
    assert wait_for(lambda: on_drive(drive, "zz_mine.png", folder))
    time.sleep(LAG)
    assert sorted(p.name for p in local.iterdir()) == [*expected, "zz_mine.png"]


def test_duplicate_names_materialize_one_file(mounted, make_drive, tmp_path):
    drive = make_drive(mounted)
    upload(drive, "model.zip", b"first")
    time.sleep(0.01)  # distinct createdTime: the mount shows the oldest
    upload(drive, "model.zip", b"second")
    local = tmp_path / "mnt" / "model.zip"
    assert wait_for(local.exists)
    time.sleep(LAG)
    assert local.read_bytes() == b"first"
    assert len(on_drive(drive, "model.zip")) == 2


class CountingApp:
    """The emulator's Drive app, counting the requests that reach it by (method, path)."""

    def __init__(self, app) -> None:
        self.app, self.calls = app, Counter()

    def __call__(self, environ, start_response):
        self.calls[environ["REQUEST_METHOD"], environ["PATH_INFO"]] += 1
        return self.app(environ, start_response)


def test_polling_follows_the_changes_feed_instead_of_relisting(emulator, drive, tmp_path):
    batch = drive.new_batch_http_request()
    for i in range(60):
        batch.add(drive.files().create(body={"name": f"f{i:02}.txt"}))
    batch.execute()
    counting = CountingApp(emulator.app)
    mount = MountSimulator(tmp_path / "m", counting, token=emulator.token, poll_interval=0.05)
    mount.start()
    try:
        assert wait_for(lambda: len(list((tmp_path / "m").iterdir())) == 60)
        counting.calls.clear()
        upload(drive, "late.txt", b"late")
        assert wait_for((tmp_path / "m" / "late.txt").exists)
        time.sleep(0.3)
        assert counting.calls["GET", "/drive/v3/files"] == 0
        assert counting.calls["GET", "/drive/v3/changes"] >= 4
    finally:
        mount.stop()
    mount.stop()


def test_a_google_doc_on_drive_does_not_stop_the_mount(mounted, make_drive, tmp_path):
    """A Doc has no bytes to download (alt=media is 403 fileNotDownloadable): the simulated
    mount leaves it out and keeps syncing everything else."""
    drive = make_drive(mounted)
    body = {"name": "Notes", "mimeType": "application/vnd.google-apps.document"}
    drive.files().create(body=body).execute()
    upload(drive, "after.bin", b"still synced")
    mnt = tmp_path / "mnt"
    assert wait_for(lambda: (mnt / "after.bin").exists())
    assert (mnt / "after.bin").read_bytes() == b"still synced"
    assert not (mnt / "Notes").exists()
    assert mounted.mount.last_error is None
