"""Drive partial responses: parsing ``fields`` and cutting resources down to it."""

from __future__ import annotations

import json

import pytest

from colab_magics.emulator.errors import DriveError
from colab_magics.emulator.fields import (
    CHANGES_LIST_DEFAULT,
    FILE_DEFAULT,
    FILES_LIST_DEFAULT,
    FieldMask,
    apply_fields,
    parse_fields,
)

FILE = {
    "kind": "drive#file",
    "id": "f1",
    "name": "model.pt",
    "mimeType": "application/octet-stream",
    "size": "1024",
    "md5Checksum": "abc",
    "parents": ["root0"],
    "appProperties": {"kind": "ckpt", "step": "100"},
    "capabilities": {"canEdit": True, "canTrash": True},
}
LISTING = {
    "kind": "drive#fileList",
    "incompleteSearch": False,
    "nextPageToken": "tok",
    "files": [FILE, {**FILE, "id": "f2", "appProperties": {"kind": "data"}}],
}


def test_absent_or_blank_fields_use_the_default():
    assert apply_fields(FILE, None, default=FILE_DEFAULT) == {
        "kind": "drive#file",
        "id": "f1",
        "name": "model.pt",
        "mimeType": "application/octet-stream",
    }
    assert apply_fields(FILE, "  ", default="id") == {"id": "f1"}


def test_files_list_default_cuts_each_file():
    body = apply_fields(LISTING, "", default=FILES_LIST_DEFAULT)
    assert set(body) == {"kind", "incompleteSearch", "nextPageToken", "files"}
    assert body["files"] == [
        {"kind": "drive#file", "id": i, "name": "model.pt", "mimeType": "application/octet-stream"}
        for i in ("f1", "f2")
    ]


def test_changes_list_default_reaches_into_each_change_file():
    changes = {
        "kind": "drive#changeList",
        "newStartPageToken": "9",
        "changes": [
            {"kind": "drive#change", "changeType": "file", "time": "t", "removed": False,
             "fileId": "f1", "file": FILE, "changeExtra": 1},
            {"kind": "drive#change", "changeType": "file", "time": "t", "removed": True,
             "fileId": "f9"},
        ],
    }  # fmt: skip
    body = apply_fields(changes, None, default=CHANGES_LIST_DEFAULT)
    assert set(body) == {"kind", "newStartPageToken", "changes"}
    first, second = body["changes"]
    assert "changeExtra" not in first
    assert first["file"] == apply_fields(FILE, None, default=FILE_DEFAULT)
    assert second == changes["changes"][1]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("id", {"id": "f1"}),
        ("id,size , md5Checksum", {"id": "f1", "size": "1024", "md5Checksum": "abc"}),
        ("appProperties", {"appProperties": {"kind": "ckpt", "step": "100"}}),
        ("appProperties/step", {"appProperties": {"step": "100"}}),
        ("appProperties(step)", {"appProperties": {"step": "100"}}),
        ("capabilities(canEdit),id", {"capabilities": {"canEdit": True}, "id": "f1"}),
        ("appProperties/step,appProperties/kind", {"appProperties": FILE["appProperties"]}),
        ("appProperties(step),appProperties", {"appProperties": FILE["appProperties"]}),
        ("appProperties/*", {"appProperties": FILE["appProperties"]}),
        ("parents", {"parents": ["root0"]}),
        ("*", FILE),
        ("id,*", FILE),
        # Unknown names are tolerated and simply absent.
        ("id,thumbnailLink", {"id": "f1"}),
        ("appProperties(nope)", {"appProperties": {}}),
        ("nope(id)", {}),
        # A sub-selection on a scalar keeps the scalar.
        ("name(x)", {"name": "model.pt"}),
        ("\tid ,\n name ", {"id": "f1", "name": "model.pt"}),
    ],
)
def test_selections_on_a_file(spec, expected):
    assert apply_fields(FILE, spec, default=FILE_DEFAULT) == expected


def test_selections_apply_to_each_element_of_a_list():
    assert apply_fields(LISTING, "files(id,appProperties/kind)", default="") == {
        "files": [
            {"id": "f1", "appProperties": {"kind": "ckpt"}},
            {"id": "f2", "appProperties": {"kind": "data"}},
        ]
    }
    assert apply_fields(LISTING, "files/id,nextPageToken", default="") == {
        "files": [{"id": "f1"}, {"id": "f2"}],
        "nextPageToken": "tok",
    }
    assert apply_fields(LISTING, "files(*)", default="")["files"] == LISTING["files"]
    deep = apply_fields(LISTING, "files(capabilities(canTrash),id)", default="")
    assert deep["files"][1] == {"capabilities": {"canTrash": True}, "id": "f2"}


def test_apply_does_not_alias_or_mutate_the_resource():
    before = {**FILE, "appProperties": dict(FILE["appProperties"])}
    body = apply_fields(FILE, "*", default="")
    body["id"] = "changed"
    assert before == FILE


def test_parse_merges_and_wants():
    mask = parse_fields("files(id),files(name),kind")
    assert mask == FieldMask({"files": FieldMask({"id": None, "name": None}), "kind": None})
    assert mask.wants("files") and mask.wants("kind") and not mask.wants("id")
    assert parse_fields("files(id),files") == FieldMask({"files": None})
    assert parse_fields("*").wants("md5Checksum")
    assert parse_fields("a/b/c") == FieldMask({"a": FieldMask({"b": FieldMask({"c": None})})})


@pytest.mark.parametrize(
    "spec",
    [
        "files(id",
        "files(id))",
        "files)id(",
        "files()",
        "(id)",
        "id,",
        ",id",
        "id,,name",
        "files/",
        "/id",
        "files//id",
        "files(id,)",
        "files(id)name",
        "id name",
        "a/" * 100 + "b",
        "a(" * 100 + "b" + ")" * 100,
    ],
)
def test_malformed_fields_are_invalid_parameter(spec):
    with pytest.raises(DriveError) as caught:
        apply_fields(FILE, spec, default=FILE_DEFAULT)
    e = caught.value
    assert (e.status, e.reason, e.location) == (400, "invalidParameter", "fields")


@pytest.mark.parametrize(
    "spec, bad",
    [
        ("files(id,capabilities,canAddChildren)", "canAddChildren"),  # the guide's own example
        ("nope", "nope"),
        ("files(id,nmae)", "nmae"),
        ("files/owners(displayName,shoeSize)", "shoeSize"),
        ("kind,files(id),nextPageTokn", "nextPageTokn"),
        ("files(name(first))", "name(first)"),
    ],
)
def test_unknown_fields_are_refused_against_drive_s_schema(drive, emulator, spec, bad):
    """Drive's "Return specific fields" guide: files.list(fields='files(id,capabilities,
    canAddChildren)') fails with "Invalid field selection canAddChildren" (400, location
    ``fields``; Google's reason for it is ``invalidParameter``)."""
    from googleapiclient.errors import HttpError

    with pytest.raises(HttpError) as caught:
        drive.files().list(fields=spec).execute()
    detail = json.loads(caught.value.content)["error"]["errors"][0]
    assert caught.value.resp.status == 400
    assert (detail["reason"], detail["location"]) == ("invalidParameter", "fields")
    assert detail["message"] == f"Invalid field selection {bad}"


def test_unknown_fields_are_refused_on_every_method(drive, emulator):
    from googleapiclient.errors import HttpError

    file_id = drive.files().create(body={"name": "f"}, fields="id").execute()["id"]
    calls = [
        lambda: drive.files().get(fileId=file_id, fields="id,bogus").execute(),
        lambda: drive.files().create(body={"name": "g"}, fields="bogus").execute(),
        lambda: drive.files().update(fileId=file_id, body={}, fields="bogus").execute(),
        lambda: drive.about().get(fields="storageQuota(bogus)").execute(),
        lambda: drive.changes().list(pageToken="1", fields="changes(file(bogus))").execute(),
        lambda: drive.changes().getStartPageToken(fields="bogus").execute(),
    ]
    for call in calls:
        with pytest.raises(HttpError) as caught:
            call()
        assert caught.value.resp.status == 400
    # Nothing was created by the refused create.
    assert [f["name"] for f in drive.files().list().execute()["files"]] == ["f"]


def test_known_fields_the_file_lacks_and_maps_are_fine(drive):
    file_id = drive.files().create(body={"name": "f", "appProperties": {"k": "v"}}).execute()["id"]
    got = (
        drive.files()
        .get(fileId=file_id, fields="id,description,appProperties(k,other),capabilities/canEdit")
        .execute()
    )
    assert got == {"id": file_id, "appProperties": {"k": "v"}, "capabilities": {"canEdit": True}}
