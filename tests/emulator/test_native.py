"""Google-native files (Docs, Sheets, shortcuts): no size or md5, no alt=media, files.export."""

from __future__ import annotations

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaInMemoryUpload

from tests.emulator.drive_helpers import error_reason, raw

DOC = "application/vnd.google-apps.document"
SHEET = "application/vnd.google-apps.spreadsheet"


def _doc(drive, text: bytes = b"", mime: str = DOC, name: str = "notes") -> str:
    media = MediaInMemoryUpload(text, mimetype="text/plain") if text else None
    return (
        drive.files()
        .create(body={"name": name, "mimeType": mime}, media_body=media)
        .execute()["id"]
    )


def test_a_doc_has_no_size_and_no_checksum(drive):
    """files resource: ``md5Checksum`` is "only populated for files with content stored in
    Google Drive; not populated for Docs Editors or shortcut files"."""
    file_id = _doc(drive, b"hello doc")
    got = drive.files().get(fileId=file_id, fields="*").execute()
    assert got["mimeType"] == DOC
    assert not {"size", "md5Checksum", "sha256Checksum"} & set(got)
    listed = drive.files().list(fields="files(id,size,md5Checksum,mimeType)").execute()["files"]
    assert listed == [{"id": file_id, "mimeType": DOC}]


def test_alt_media_on_a_doc_is_403_file_not_downloadable(emulator, drive):
    """Drive's "Download and export files" guide: alt=media works only for blob files; a Docs
    Editors file answers 403 ``fileNotDownloadable`` and needs files.export."""
    file_id = _doc(drive, b"text")
    with pytest.raises(HttpError) as e:
        drive.files().get_media(fileId=file_id).execute()
    assert e.value.resp.status == 403 and error_reason(e.value.content) == "fileNotDownloadable"
    status, _, body = raw(emulator, "GET", f"/drive/v3/files/{file_id}?alt=media")
    assert status == 403 and b"Export" in body


def test_export_a_doc_as_plain_text(drive):
    """files.export (GET /files/{id}/export?mimeType=...) returns the converted bytes."""
    file_id = _doc(drive, b"line one\nline two\n")
    assert drive.files().export(fileId=file_id, mimeType="text/plain").execute() == (
        b"line one\nline two\n"
    )
    sheet = _doc(drive, b"a,b\n1,2\n", mime=SHEET, name="table")
    assert drive.files().export(fileId=sheet, mimeType="text/csv").execute() == b"a,b\n1,2\n"


def test_export_refusals_are_drive_s(drive):
    """Binary files are not exportable (403 ``fileNotExportable``); a conversion a type lacks
    is a 400; the mimeType parameter is required."""
    blob = (
        drive.files()
        .create(
            body={"name": "b.bin"}, media_body=MediaInMemoryUpload(b"x", mimetype="application/zip")
        )
        .execute()["id"]
    )
    with pytest.raises(HttpError) as e:
        drive.files().export(fileId=blob, mimeType="text/plain").execute()
    assert e.value.resp.status == 403 and error_reason(e.value.content) == "fileNotExportable"
    doc = _doc(drive, b"t")
    with pytest.raises(HttpError) as e:
        drive.files().export(fileId=doc, mimeType="image/png").execute()
    assert e.value.resp.status == 400
    with pytest.raises(HttpError) as e:
        drive.files().export(fileId="nope", mimeType="text/plain").execute()
    assert e.value.resp.status == 404


def test_export_needs_a_mime_type(emulator, drive):
    doc = _doc(drive, b"t")
    status, _, body = raw(emulator, "GET", f"/drive/v3/files/{doc}/export")
    assert status == 400 and error_reason(body) == "required"


def test_query_terms_for_shortcuts_and_views_are_accepted(drive):
    """``shortcutDetails.targetId`` (= and !=) and ``viewedByMeTime`` are query terms in
    Drive's "Search query terms and operators" reference; a client may send them."""
    target = _doc(drive, b"text")
    shortcut = _doc(drive, mime="application/vnd.google-apps.shortcut", name="link")

    def ids(q: str) -> set[str]:
        return {f["id"] for f in drive.files().list(q=q, fields="files(id)").execute()["files"]}

    assert ids(f"shortcutDetails.targetId != '{target}'") == {shortcut}
    assert ids(f"shortcutDetails.targetId = '{target}'") == set()
    assert ids("viewedByMeTime > '2000-01-01T00:00:00'") == {target, shortcut}
