"""Small helpers for emulator tests: raw HTTP where the client library cannot go."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
from urllib.parse import urlsplit

from googleapiclient.http import MediaIoBaseUpload

FOLDER = "application/vnd.google-apps.folder"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def raw(
    handle,
    method: str,
    target: str,
    *,
    body: bytes = b"",
    headers: dict | None = None,
    token: str | None = None,
):
    """One raw HTTP request to the emulator; returns ``(status, headers, body)``.

    ``target`` is a path (``/drive/v3/files``) or a full URL on the emulator. The bearer token
    is the emulator's unless ``token`` is given ("" sends no Authorization header).
    """
    parts = urlsplit(target if "://" in target else handle.url.rstrip("/") + target)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    hdrs = dict(headers or {})
    token = handle.token if token is None else token
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def error_reason(body: bytes) -> str:
    return json.loads(body)["error"]["errors"][0]["reason"]


def upload(
    drive,
    data: bytes,
    *,
    name: str = "f.bin",
    parents=None,
    mimetype: str = "application/octet-stream",
    resumable: bool = False,
    chunksize: int = 256 * 1024,
    fields: str = "id,name,size,md5Checksum,parents",
) -> dict:
    """Create a file with ``data`` through the client (multipart, or resumable in chunks)."""
    body: dict = {"name": name}
    if parents is not None:
        body["parents"] = parents
    media = MediaIoBaseUpload(
        io.BytesIO(data), mimetype=mimetype, chunksize=chunksize, resumable=resumable
    )
    request = drive.files().create(body=body, media_body=media, fields=fields)
    if not resumable:
        return request.execute()
    response = None
    while response is None:
        _, response = request.next_chunk()
    return response


def start_session(handle, *, name: str = "r.bin", total: int | None = None) -> str:
    """Open a resumable create session by raw HTTP; returns the session URL."""
    headers = {"Content-Type": "application/json; charset=UTF-8"}
    if total is not None:
        headers["X-Upload-Content-Length"] = str(total)
    status, hdrs, body = raw(
        handle,
        "POST",
        "/upload/drive/v3/files?uploadType=resumable&fields=id,size,md5Checksum",
        body=json.dumps({"name": name}).encode(),
        headers=headers,
    )
    assert status == 200, body
    return hdrs["location"]
