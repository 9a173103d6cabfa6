"""about.get's storageQuota, the trash, emptyTrash, and storageQuotaExceeded."""

from __future__ import annotations

import io
import json

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload

from tests.emulator.drive_helpers import FOLDER, error_reason, raw, upload


def _quota(drive) -> dict:
    return drive.about().get(fields="storageQuota").execute()["storageQuota"]


def test_about_needs_fields(emulator, drive):
    with pytest.raises(HttpError) as e:
        drive.about().get().execute()
    assert e.value.resp.status == 400 and error_reason(e.value.content) == "required"
    about = drive.about().get(fields="kind,user").execute()
    assert about == {
        "kind": "drive#about",
        "user": {
            "kind": "drive#user",
            "displayName": "Colab Magics",
            "emailAddress": "me@colab-magics.local",
            "me": True,
            "permissionId": "00000000000000000001",
        },
    }


def test_trash_counts_until_emptied(drive):
    assert _quota(drive) == {"usage": "0", "usageInDrive": "0", "usageInDriveTrash": "0"}
    folder = drive.files().create(body={"name": "d", "mimeType": FOLDER}).execute()
    inside = upload(drive, b"a" * 1000, parents=[folder["id"]])
    loose = upload(drive, b"b" * 300)
    kept = upload(drive, b"c" * 7)
    assert _quota(drive)["usage"] == "1307"
    drive.files().update(fileId=folder["id"], body={"trashed": True}).execute()
    drive.files().update(fileId=loose["id"], body={"trashed": True}).execute()
    assert _quota(drive) == {"usage": "1307", "usageInDrive": "1307", "usageInDriveTrash": "1300"}
    drive.files().emptyTrash().execute()
    assert _quota(drive) == {"usage": "7", "usageInDrive": "7", "usageInDriveTrash": "0"}
    for gone in (folder, inside, loose):
        with pytest.raises(HttpError) as e:
            drive.files().get(fileId=gone["id"]).execute()
        assert e.value.resp.status == 404
    assert drive.files().get(fileId=kept["id"], fields="size").execute() == {"size": "7"}


def test_delete_frees_space_at_once(drive):
    f = upload(drive, b"z" * 500)
    drive.files().delete(fileId=f["id"]).execute()
    assert _quota(drive)["usage"] == "0"


def test_quota_exceeded_on_create_update_and_resumable_initiation(emulator, drive):
    emulator.settings.update({"quota_bytes": 1000})
    assert _quota(drive)["limit"] == "1000"
    f = upload(drive, b"x" * 900)
    for call in (
        lambda: upload(drive, b"y" * 200),
        lambda: (
            drive.files()
            .update(
                fileId=f["id"],
                media_body=MediaIoBaseUpload(io.BytesIO(b"y" * 1200), mimetype="text/plain"),
            )
            .execute()
        ),
        lambda: drive.files().copy(fileId=f["id"], body={}).execute(),
    ):
        with pytest.raises(HttpError) as e:
            call()
        assert e.value.resp.status == 403
        assert error_reason(e.value.content) == "storageQuotaExceeded"
    status, _, body = raw(
        emulator,
        "POST",
        "/upload/drive/v3/files?uploadType=resumable",
        body=json.dumps({"name": "big"}).encode(),
        headers={"Content-Type": "application/json", "X-Upload-Content-Length": "200"},
    )
    assert status == 403 and error_reason(body) == "storageQuotaExceeded"
    # Replacing content with something smaller fits; nothing failed left bytes behind.
    upload_small = (
        drive.files()
        .update(
            fileId=f["id"],
            media_body=MediaIoBaseUpload(io.BytesIO(b"y" * 950), mimetype="text/plain"),
            fields="size",
        )
        .execute()
    )
    assert upload_small == {"size": "950"}
    assert _quota(drive)["usage"] == "950"
    assert len(list((emulator.root / "blobs").iterdir())) == 1


def test_trashed_bytes_still_count_against_the_quota(emulator, drive):
    emulator.settings.update({"quota_bytes": 1000})
    f = upload(drive, b"x" * 800)
    drive.files().update(fileId=f["id"], body={"trashed": True}).execute()
    with pytest.raises(HttpError) as e:
        upload(drive, b"y" * 300)
    assert error_reason(e.value.content) == "storageQuotaExceeded"
    drive.files().emptyTrash().execute()
    assert upload(drive, b"y" * 300)["size"] == "300"


def test_trashed_is_inherited_from_a_trashed_folder(drive):
    """The files resource: ``trashed`` is "Whether the file has been trashed, either
    explicitly or from a trashed parent folder"; ``explicitlyTrashed`` only the former."""
    folder_mime = "application/vnd.google-apps.folder"
    bin_ = drive.files().create(body={"name": "bin", "mimeType": folder_mime}).execute()["id"]
    drive.files().update(fileId=bin_, body={"trashed": True}).execute()
    fields = "trashed,explicitlyTrashed"

    def state(file_id):
        got = drive.files().get(fileId=file_id, fields=fields).execute()
        return got["trashed"], got["explicitlyTrashed"]

    made = drive.files().create(body={"name": "late", "parents": [bin_]}).execute()["id"]
    assert state(made) == (True, False)  # created inside a trashed folder
    # A subtree moved in goes with it; one already trashed on its own stays explicitly so.
    sub = drive.files().create(body={"name": "sub", "mimeType": folder_mime}).execute()["id"]
    leaf = drive.files().create(body={"name": "leaf", "parents": [sub]}).execute()["id"]
    own = drive.files().create(body={"name": "own", "parents": [sub]}).execute()["id"]
    drive.files().update(fileId=own, body={"trashed": True}).execute()
    root = drive.files().get(fileId="root", fields="id").execute()["id"]
    drive.files().update(fileId=sub, addParents=bin_, removeParents=root).execute()
    assert [state(x) for x in (sub, leaf, own)] == [(True, False), (True, False), (True, True)]
    listed = drive.files().list(q="trashed = false", fields="files(name)").execute()["files"]
    assert listed == []
    # Moved out again, only what was trashed on its own stays in the trash.
    drive.files().update(fileId=sub, addParents=root, removeParents=bin_).execute()
    assert [state(x) for x in (sub, leaf, own)] == [(False, False), (False, False), (True, True)]
    drive.files().update(fileId=made, addParents=root, removeParents=bin_).execute()
    assert state(made) == (False, False)
