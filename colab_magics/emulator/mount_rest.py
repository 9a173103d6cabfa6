"""A tiny Drive v3 REST client over the emulator's inner WSGI app, for the simulated mount.

The mount talks to the app in process, past the fault layer: it stands for Google's own
syncer, not for a client on the network.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from urllib.parse import urlencode

from werkzeug.test import Client

from colab_magics.emulator.schema import FOLDER_MIME

FILE_FIELDS = "id,name,mimeType,parents,md5Checksum,trashed,createdTime"


class DriveRestError(RuntimeError):
    """A Drive call made by the simulator failed."""


class DriveRest:
    """The few Drive v3 REST calls the simulator needs, made in process through WSGI."""

    def __init__(self, app: Callable, token: str) -> None:
        self._client = Client(app)
        self._auth = {"Authorization": f"Bearer {token}"}

    def _call(self, method: str, path: str, params: dict | None = None, **kw) -> bytes:
        url = path + ("?" + urlencode(params) if params else "")
        headers = {**self._auth, **kw.pop("headers", {})}
        response = self._client.open(url, method=method, headers=headers, **kw)
        try:
            data = response.get_data()
        finally:
            response.close()
        if response.status_code >= 300:
            raise DriveRestError(f"{method} {path}: {response.status_code} {data[:200]!r}")
        return data

    def _json(self, method: str, path: str, params: dict | None = None, **kw) -> dict:
        data = self._call(method, path, params, **kw)
        return json.loads(data) if data else {}

    def root_id(self) -> str:
        return self._json("GET", "/drive/v3/files/root", {"fields": "id"})["id"]

    def start_page_token(self) -> str:
        return self._json("GET", "/drive/v3/changes/startPageToken")["startPageToken"]

    def list_all(self, restarts: int = 3) -> list[dict]:
        """Every untrashed file; listed again if a page token dies with the listing's shape."""
        fields = f"nextPageToken,files({FILE_FIELDS})"
        params = {"q": "trashed = false", "pageSize": "1000", "fields": fields}
        out: list[dict] = []
        while True:
            try:
                page = self._json("GET", "/drive/v3/files", params)
            except DriveRestError:
                if "pageToken" not in params or restarts <= 0:
                    raise
                restarts -= 1
                out = []
                params.pop("pageToken")
                continue
            out.extend(page.get("files", []))
            if not page.get("nextPageToken"):
                return out
            params["pageToken"] = page["nextPageToken"]

    def changes(self, token: str) -> tuple[list[dict], str]:
        """Changes since ``token`` and the token to ask from next time."""
        params = {
            "pageToken": token,
            "pageSize": "1000",
            "includeRemoved": "true",
            "fields": "nextPageToken,newStartPageToken,"
            f"changes(fileId,removed,file({FILE_FIELDS}))",
        }
        out: list[dict] = []
        while True:
            page = self._json("GET", "/drive/v3/changes", params)
            out += page.get("changes", [])
            if page.get("newStartPageToken"):
                return out, page["newStartPageToken"]
            if not page.get("nextPageToken"):
                return out, token
            params["pageToken"] = page["nextPageToken"]

    def download(self, file_id: str) -> bytes:
        return self._call("GET", f"/drive/v3/files/{file_id}", {"alt": "media"})

    def _metadata(self, method: str, path: str, body: dict) -> dict:
        params = {"fields": FILE_FIELDS}
        data, ctype = json.dumps(body), "application/json"
        return self._json(method, path, params, data=data, content_type=ctype)

    def create_folder(self, name: str, parent: str) -> dict:
        body = {"name": name, "mimeType": FOLDER_MIME, "parents": [parent]}
        return self._metadata("POST", "/drive/v3/files", body)

    def upload(self, data: bytes, *, name: str, parent: str, file_id: str | None) -> dict:
        """Create a file (``file_id`` None) or replace its content, in one multipart request."""
        metadata = {"name": name} if file_id else {"name": name, "parents": [parent]}
        boundary = "mount_" + secrets.token_hex(8)
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
                json.dumps(metadata).encode(),
                f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
                data,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        path = "/upload/drive/v3/files" + (f"/{file_id}" if file_id else "")
        return self._json(
            "PATCH" if file_id else "POST",
            path,
            {"uploadType": "multipart", "fields": FILE_FIELDS},
            data=body,
            content_type=f"multipart/related; boundary={boundary}",
        )

    def trash(self, file_id: str) -> None:
        self._metadata("PATCH", f"/drive/v3/files/{file_id}", {"trashed": True})
