"""changes.getStartPageToken and changes.list: a client can keep an index current."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError

from tests.emulator.drive_helpers import FOLDER, upload


def _all_changes(drive, token, **kw):
    changes = []
    while True:
        page = drive.changes().list(pageToken=token, fields="*", **kw).execute()
        changes += page["changes"]
        if "newStartPageToken" in page:
            assert "nextPageToken" not in page
            return changes, page["newStartPageToken"]
        token = page["nextPageToken"]


def test_changes_feed_sees_create_update_trash_and_delete(drive):
    start = drive.changes().getStartPageToken().execute()
    assert start["kind"] == "drive#startPageToken"
    token = start["startPageToken"]
    f = upload(drive, b"one", name="a")
    changes, token = _all_changes(drive, token)
    assert [(c["fileId"], c["removed"]) for c in changes] == [(f["id"], False)]
    assert changes[0]["kind"] == "drive#change" and changes[0]["changeType"] == "file"
    assert changes[0]["file"]["name"] == "a"

    drive.files().update(fileId=f["id"], body={"name": "b"}).execute()
    changes, token = _all_changes(drive, token)
    assert [c["file"]["name"] for c in changes] == ["b"]

    drive.files().update(fileId=f["id"], body={"trashed": True}).execute()
    changes, token = _all_changes(drive, token)
    assert changes[0]["file"]["trashed"] is True and changes[0]["removed"] is False

    drive.files().delete(fileId=f["id"]).execute()
    changes, token = _all_changes(drive, token)
    assert [(c["fileId"], c["removed"], "file" in c) for c in changes] == [(f["id"], True, False)]
    assert _all_changes(drive, token, includeRemoved=False)[0] == []

    changes, _ = _all_changes(drive, token)
    assert changes == []


def test_changes_page_and_show_each_file_once(drive):
    token = drive.changes().getStartPageToken().execute()["startPageToken"]
    folder = drive.files().create(body={"name": "d", "mimeType": FOLDER}).execute()
    files = [
        drive.files().create(body={"name": f"f{i}", "parents": [folder["id"]]}).execute()
        for i in range(7)
    ]
    for f in files[:3]:
        drive.files().update(fileId=f["id"], body={"starred": True}).execute()
    changes, _ = _all_changes(drive, token, pageSize=4)
    ids = [c["fileId"] for c in changes]
    # Every file shows up; pages of 4 may repeat a file across pages, never within one.
    assert set(ids) == {folder["id"], *(f["id"] for f in files)}
    # Trashing a folder reports its children too (they are trashed with it).
    token = drive.changes().getStartPageToken().execute()["startPageToken"]
    drive.files().update(fileId=folder["id"], body={"trashed": True}).execute()
    changes, _ = _all_changes(drive, token)
    assert {c["fileId"] for c in changes} == {folder["id"], *(f["id"] for f in files)}
    assert all(c["file"]["trashed"] for c in changes)


def test_changes_list_needs_a_valid_token(drive):
    with pytest.raises(HttpError) as e:
        drive.changes().list(pageToken="garbage").execute()
    assert e.value.resp.status == 400
