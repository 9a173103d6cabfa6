"""Downloads: alt=media whole, by Range (206/416), and chunked through MediaIoBaseDownload."""

from __future__ import annotations

import io
import os

import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseDownload

from tests.emulator.drive_helpers import FOLDER, error_reason, md5, raw, upload


@pytest.fixture
def stored(drive):
    data = os.urandom(1_000_003)
    return upload(drive, data, name="blob.bin", mimetype="application/x-blob"), data


def test_whole_download_has_type_and_length(emulator, stored):
    f, data = stored
    status, headers, body = raw(emulator, "GET", f"/drive/v3/files/{f['id']}?alt=media")
    assert status == 200 and body == data
    assert headers["content-length"] == str(len(data))
    assert headers["content-type"] == "application/x-blob"


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=999990-", 999990, 1_000_002),
        ("bytes=-5", 999_998, 1_000_002),
        ("bytes=10-5000000", 10, 1_000_002),
    ],
)
def test_range_answers_206_with_content_range(emulator, stored, header, start, end):
    f, data = stored
    status, headers, body = raw(
        emulator, "GET", f"/drive/v3/files/{f['id']}?alt=media", headers={"Range": header}
    )
    assert status == 206
    assert body == data[start : end + 1]
    assert headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
    assert headers["content-length"] == str(end - start + 1)


def test_unsatisfiable_range_is_416(emulator, stored):
    f, data = stored
    status, headers, _ = raw(
        emulator,
        "GET",
        f"/drive/v3/files/{f['id']}?alt=media",
        headers={"Range": f"bytes={len(data)}-"},
    )
    assert status == 416 and headers["content-range"] == f"bytes */{len(data)}"


def test_chunked_download_with_media_io_base_download(drive, stored):
    f, data = stored
    out = io.BytesIO()
    downloader = MediaIoBaseDownload(
        out, drive.files().get_media(fileId=f["id"]), chunksize=300_000
    )
    done, steps = False, 0
    while not done:
        status, done = downloader.next_chunk()
        steps += 1
    assert steps == 4  # 300k, 300k, 300k, 100k
    assert status.total_size == len(data)
    assert md5(out.getvalue()) == md5(data)


def test_empty_file_downloads_through_the_client(drive):
    f = upload(drive, b"")
    out = io.BytesIO()
    downloader = MediaIoBaseDownload(out, drive.files().get_media(fileId=f["id"]))
    _, done = downloader.next_chunk()
    assert done and out.getvalue() == b""


def test_folder_is_not_downloadable(drive):
    folder = drive.files().create(body={"name": "d", "mimeType": FOLDER}).execute()
    with pytest.raises(HttpError) as e:
        drive.files().get_media(fileId=folder["id"]).execute()
    assert e.value.resp.status == 403 and error_reason(e.value.content) == "fileNotDownloadable"


def test_download_started_before_an_update_reads_the_old_content(emulator, drive):
    old = os.urandom(3 << 20)
    f = upload(drive, old)
    # A raw response read slowly: the update lands between its first and last bytes.
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", int(emulator.url.rsplit(":", 1)[1].strip("/")))
    conn.request(
        "GET",
        f"/drive/v3/files/{f['id']}?alt=media",
        headers={"Authorization": f"Bearer {emulator.token}"},
    )
    resp = conn.getresponse()
    head = resp.read(1000)
    new = os.urandom(1000)
    upload_id = (
        drive.files().update(fileId=f["id"], media_body=_media(new), fields="md5Checksum").execute()
    )
    assert upload_id["md5Checksum"] == md5(new)
    rest = resp.read()
    conn.close()
    assert head + rest == old
    assert drive.files().get_media(fileId=f["id"]).execute() == new


def _media(data: bytes):
    from googleapiclient.http import MediaIoBaseUpload

    return MediaIoBaseUpload(io.BytesIO(data), mimetype="application/octet-stream")
