"""files.create/get/update/copy/delete and generateIds, through google-api-python-client."""

from __future__ import annotations

import concurrent.futures
import re

import pytest
from googleapiclient.errors import HttpError

from tests.emulator.drive_helpers import FOLDER, error_reason, md5, raw, upload

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _reason(e: HttpError) -> str:
    return error_reason(e.content)


def test_metadata_create_then_get_round_trips(drive):
    created = (
        drive.files()
        .create(
            body={
                "name": "notes.txt",
                "mimeType": "text/plain",
                "description": "d",
                "appProperties": {"k": "v"},
                "properties": {"p": "q"},
                "starred": True,
            },
            fields="*",
        )
        .execute()
    )
    got = drive.files().get(fileId=created["id"], fields="*").execute()
    assert got == created
    assert got["kind"] == "drive#file"
    assert re.fullmatch(r"[A-Za-z0-9_-]{33}", got["id"])
    assert (got["name"], got["mimeType"], got["description"]) == ("notes.txt", "text/plain", "d")
    assert got["appProperties"] == {"k": "v"} and got["properties"] == {"p": "q"}
    assert got["starred"] is True and got["trashed"] is False
    # int64 values travel as strings; a metadata-only file is empty.
    assert got["size"] == "0" and got["version"] == "1" and got["quotaBytesUsed"] == "0"
    assert got["md5Checksum"] == md5(b"")
    assert TIME.fullmatch(got["createdTime"]) and TIME.fullmatch(got["modifiedTime"])
    assert got["ownedByMe"] is True


def test_default_fields_and_default_name(drive):
    created = drive.files().create(body={}).execute()
    assert set(created) == {"kind", "id", "name", "mimeType"}
    assert created["name"] == "Untitled"
    assert created["mimeType"] == "application/octet-stream"


def test_root_alias_is_my_drive_and_the_default_parent(drive):
    root = drive.files().get(fileId="root", fields="id,name,mimeType,parents").execute()
    assert root["name"] == "My Drive" and root["mimeType"] == FOLDER
    assert "parents" not in root or root["parents"] == []
    f = drive.files().create(body={"name": "a"}, fields="parents").execute()
    assert f["parents"] == [root["id"]]
    g = drive.files().create(body={"name": "b", "parents": ["root"]}, fields="parents").execute()
    assert g["parents"] == [root["id"]]


def test_folders_hold_files(drive):
    folder = drive.files().create(body={"name": "d", "mimeType": FOLDER}, fields="*").execute()
    assert "size" not in folder and "md5Checksum" not in folder
    child = upload(drive, b"abc", name="c.bin", parents=[folder["id"]])
    assert child["parents"] == [folder["id"]]
    listed = drive.files().list(q=f"'{folder['id']}' in parents", fields="files(id)").execute()
    assert listed["files"] == [{"id": child["id"]}]


def test_missing_parent_is_404_and_a_file_parent_is_400(drive):
    with pytest.raises(HttpError) as e:
        drive.files().create(body={"name": "x", "parents": ["nope-nope-nope"]}).execute()
    assert e.value.resp.status == 404 and _reason(e.value) == "notFound"
    plain = drive.files().create(body={"name": "plain"}).execute()
    with pytest.raises(HttpError) as e:
        drive.files().create(body={"name": "x", "parents": [plain["id"]]}).execute()
    assert e.value.resp.status == 400


def test_unknown_id_is_404_with_drives_message(drive):
    for call in (
        drive.files().get(fileId="doesNotExist123"),
        drive.files().update(fileId="doesNotExist123", body={"name": "x"}),
        drive.files().delete(fileId="doesNotExist123"),
        drive.files().copy(fileId="doesNotExist123", body={}),
        drive.files().get_media(fileId="doesNotExist123"),
    ):
        with pytest.raises(HttpError) as e:
            call.execute()
        assert e.value.resp.status == 404
        assert _reason(e.value) == "notFound"
        assert "File not found: doesNotExist123." in e.value.content.decode()


def test_update_metadata_bumps_version_and_edits_properties(drive):
    f = (
        drive.files()
        .create(
            body={"name": "a", "appProperties": {"keep": "1", "drop": "2"}}, fields="id,version"
        )
        .execute()
    )
    updated = (
        drive.files()
        .update(
            fileId=f["id"],
            body={"name": "b", "description": "new", "appProperties": {"drop": None, "add": "3"}},
            fields="name,description,appProperties,version",
        )
        .execute()
    )
    assert updated == {
        "name": "b",
        "description": "new",
        "appProperties": {"keep": "1", "add": "3"},
        "version": str(int(f["version"]) + 1),
    }


def test_parents_are_moved_with_add_and_remove_parents(drive):
    a = drive.files().create(body={"name": "A", "mimeType": FOLDER}).execute()
    b = drive.files().create(body={"name": "B", "mimeType": FOLDER}).execute()
    f = drive.files().create(body={"name": "f", "parents": [a["id"]]}).execute()
    moved = (
        drive.files()
        .update(fileId=f["id"], addParents=b["id"], removeParents=a["id"], fields="parents")
        .execute()
    )
    assert moved["parents"] == [b["id"]]
    # A second parent is refused, as on Drive since 2020.
    with pytest.raises(HttpError) as e:
        drive.files().update(fileId=f["id"], addParents=a["id"]).execute()
    assert e.value.resp.status == 403
    # parents is not writable in the body of an update.
    with pytest.raises(HttpError) as e:
        drive.files().update(fileId=f["id"], body={"parents": [a["id"]]}).execute()
    assert e.value.resp.status == 403 and _reason(e.value) == "fieldNotWritable"
    # A folder cannot go inside itself, nor below itself.
    sub = drive.files().create(body={"name": "sub", "mimeType": FOLDER, "parents": [a["id"]]})
    sub = sub.execute()
    for target in (a["id"], sub["id"]):
        with pytest.raises(HttpError) as e:
            drive.files().update(fileId=a["id"], addParents=target, removeParents="root").execute()
        assert e.value.resp.status == 400 and _reason(e.value) == "badRequest"


def test_copy_duplicates_content_and_keeps_the_source(drive):
    data = b"copy me" * 1000
    src = upload(drive, data, name="src.bin")
    copy = (
        drive.files()
        .copy(fileId=src["id"], body={"name": "dst.bin"}, fields="id,name,md5Checksum,size,parents")
        .execute()
    )
    assert copy["id"] != src["id"]
    assert (copy["name"], copy["md5Checksum"], copy["size"]) == (
        "dst.bin",
        md5(data),
        str(len(data)),
    )
    assert copy["parents"] == src["parents"]
    assert drive.files().get_media(fileId=copy["id"]).execute() == data
    drive.files().delete(fileId=src["id"]).execute()
    assert drive.files().get_media(fileId=copy["id"]).execute() == data
    # Without a name the copy is "Copy of X" (Drive's default title of a copy; the stricter
    # reading, since a client that needs a name must give one).
    unnamed = drive.files().copy(fileId=copy["id"], body={}, fields="name").execute()
    assert unnamed["name"] == "Copy of dst.bin"


def test_delete_is_permanent_and_takes_descendants(drive, emulator):
    top = drive.files().create(body={"name": "top", "mimeType": FOLDER}).execute()
    mid = (
        drive.files()
        .create(body={"name": "mid", "mimeType": FOLDER, "parents": [top["id"]]})
        .execute()
    )
    leaf = upload(drive, b"leaf", parents=[mid["id"]])
    status, _, body = raw(emulator, "DELETE", f"/drive/v3/files/{top['id']}")
    assert status == 204 and body == b""
    for file_id in (top["id"], mid["id"], leaf["id"]):
        with pytest.raises(HttpError) as e:
            drive.files().get(fileId=file_id).execute()
        assert e.value.resp.status == 404
    assert not any((emulator.root / "blobs").iterdir())


def test_trash_cascades_implicitly_and_untrash_restores(drive):
    folder = drive.files().create(body={"name": "d", "mimeType": FOLDER}).execute()
    child = drive.files().create(body={"name": "c", "parents": [folder["id"]]}).execute()
    lone = drive.files().create(body={"name": "l", "parents": [folder["id"]]}).execute()
    drive.files().update(fileId=lone["id"], body={"trashed": True}).execute()
    got = (
        drive.files()
        .update(
            fileId=folder["id"],
            body={"trashed": True},
            fields="trashed,explicitlyTrashed,trashedTime",
        )
        .execute()
    )
    assert got["trashed"] and got["explicitlyTrashed"] and TIME.fullmatch(got["trashedTime"])
    fields = "trashed,explicitlyTrashed"
    assert drive.files().get(fileId=child["id"], fields=fields).execute() == {
        "trashed": True,
        "explicitlyTrashed": False,
    }
    drive.files().update(fileId=folder["id"], body={"trashed": False}).execute()
    assert drive.files().get(fileId=child["id"], fields="trashed").execute() == {"trashed": False}
    # Trashed on its own before the folder: stays in the trash.
    assert drive.files().get(fileId=lone["id"], fields="trashed").execute() == {"trashed": True}


def test_generated_ids_can_be_used_once(drive):
    ids = drive.files().generateIds(count=3).execute()
    assert ids["kind"] == "drive#generatedIds" and ids["space"] == "drive"
    assert len(set(ids["ids"])) == 3
    f = drive.files().create(body={"id": ids["ids"][0], "name": "x"}, fields="id").execute()
    assert f["id"] == ids["ids"][0]
    with pytest.raises(HttpError) as e:
        drive.files().create(body={"id": ids["ids"][0], "name": "y"}).execute()
    assert e.value.resp.status == 409
    with pytest.raises(HttpError) as e:
        drive.files().create(body={"id": "bad id!", "name": "y"}).execute()
    assert e.value.resp.status == 400


def test_bad_json_body_is_a_parse_error(emulator):
    status, headers, body = raw(
        emulator,
        "POST",
        "/drive/v3/files",
        body=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert status == 400 and error_reason(body) == "parseError"
    assert headers["content-type"] == "application/json; charset=UTF-8"


def test_unknown_route_is_a_404_page_not_a_missing_file(emulator):
    """Google's front end answers a URL no method has with an HTML 404 page; Drive's JSON
    ``notFound`` is kept for files, so a client cannot mistake a wrong URL for a missing file."""
    for path in ("/drive/v3/nothing/here", "/drive/v2/files", "/drive/v3/files/x/y/z"):
        status, headers, body = raw(emulator, "GET", path)
        assert status == 404 and headers["content-type"].startswith("text/html"), path
        assert b'"notFound"' not in body


def test_a_double_slash_is_not_redirected(emulator):
    """werkzeug merges ``//`` with a 308 redirect; Google's front end does not redirect."""
    status, headers, _ = raw(emulator, "GET", "//drive/v3/files")
    assert status == 404 and "location" not in headers
    status, _, _ = raw(emulator, "GET", "/drive/v3//files")
    assert status == 404


def test_the_client_reads_an_unknown_url_as_a_wrong_address(emulator):
    from colab_magics.drive.errors import (
        DriveError,
        DriveNotFound,
        error_from_response,
        map_exception,
    )
    from tests.drive.conftest import make_client

    client = make_client(emulator)
    resp, content = client.transport.http.request(emulator.url + "drive/v3/nope", "GET")
    error = error_from_response(resp.status, content, resp)
    assert isinstance(error, DriveError) and not isinstance(error, DriveNotFound)
    assert map_exception(error) is error


def test_concurrent_updates_lose_nothing(emulator, drive, make_drive):
    f = drive.files().create(body={"name": "shared"}, fields="id").execute()

    def work(i: int) -> None:
        mine = make_drive(emulator)  # one client per thread: httplib2 is not thread-safe
        for j in range(10):
            mine.files().update(
                fileId=f["id"], body={"appProperties": {f"k{i}-{j}": "v"}}
            ).execute()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    got = drive.files().get(fileId=f["id"], fields="version,appProperties").execute()
    assert got["version"] == "41"
    assert len(got["appProperties"]) == 40


@pytest.mark.parametrize(
    "field, value",
    [("size", "5"), ("md5Checksum", "0" * 32), ("version", "9"), ("capabilities", {}),
     ("owners", []), ("webViewLink", "http://x"), ("quotaBytesUsed", "1")],
)  # fmt: skip
def test_read_only_fields_in_a_body_are_refused(drive, field, value):
    """Fields the discovery document marks "Output only" are refused with 403
    ``fieldNotWritable`` on create, update and copy, not silently ignored."""
    made = drive.files().create(body={"name": "ro"}).execute()["id"]
    calls = [
        lambda: drive.files().create(body={"name": "x", field: value}).execute(),
        lambda: drive.files().update(fileId=made, body={field: value}).execute(),
        lambda: drive.files().copy(fileId=made, body={field: value}).execute(),
    ]
    for call in calls:
        with pytest.raises(HttpError) as e:
            call()
        assert e.value.resp.status == 403 and _reason(e.value) == "fieldNotWritable"
    assert [f["name"] for f in drive.files().list().execute()["files"]] == ["ro"]
    # kind, which clients echo back from a fetched resource, is taken.
    drive.files().update(fileId=made, body={"kind": "drive#file", "name": "ok"}).execute()
