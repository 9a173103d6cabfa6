"""The first thing every request meets: the bearer token, then a cap on bodies that are metadata.

Nothing of a request body is read before its token is checked, so a peer without the token
cannot make the server take in (or hold in memory) what it sends. Bodies of routes that carry
JSON metadata or a batch are capped; only media uploads may be large.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from typing import Any

from colab_magics.emulator.errors import DriveError, auth_error

METADATA_BODY_CAP = 16 << 20
"""Largest body a route that is not a media upload accepts (metadata, batch, control)."""

CLOSE_CONNECTION = "colab_magics.emulator.close_connection"
"""An environ key: when true, the HTTP server closes the connection instead of draining it."""

RAW_TARGET = "colab_magics.emulator.raw_target"
"""An environ key: the request target exactly as the request line carried it."""

_UPLOAD_PREFIXES = ("/upload/", "/resumable/upload/")
_DRAIN_SMALL = 1 << 20
"""A refused body up to this size is still drained, so the client reads the answer cleanly."""


def token_ok(header: str, token: str) -> bool:
    """Whether an ``Authorization`` header value carries ``token`` as a bearer token."""
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )


def is_upload_path(path: str) -> bool:
    return path.startswith(_UPLOAD_PREFIXES)


def too_large(limit: int = METADATA_BODY_CAP) -> DriveError:
    return DriveError(413, "requestTooLarge", f"Request body too large (limit {limit} bytes).")


class CappedInput:
    """``wsgi.input`` that raises a 413 once more than ``limit`` bytes were asked of it."""

    def __init__(self, raw: Any, limit: int, environ: dict) -> None:
        self._raw = raw
        self._left = limit
        self._environ = environ

    def _take(self, data: bytes) -> bytes:
        self._left -= len(data)
        if self._left < 0:
            self._environ[CLOSE_CONNECTION] = True  # the rest of the body stays unread
            raise too_large()
        return data

    def read(self, size: int = -1) -> bytes:
        n = self._left + 1 if size is None or size < 0 else min(size, self._left + 1)
        return self._take(self._raw.read(n))

    def readline(self, size: int = -1) -> bytes:
        n = self._left + 1 if size is None or size < 0 else min(size, self._left + 1)
        return self._take(self._raw.readline(n))

    def __iter__(self):
        return iter(self.readline, b"")


class RequestGate:
    """WSGI middleware: 401 without the token and 413 past the cap, before any body byte."""

    def __init__(self, app: Callable, *, token: str, body_cap: int = METADATA_BODY_CAP) -> None:
        self.app = app
        self.token = token
        self.body_cap = body_cap

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not token_ok(environ.get("HTTP_AUTHORIZATION", ""), self.token):
            return _refuse(environ, start_response, auth_error())
        if not is_upload_path(environ.get("PATH_INFO", "")):
            length = _declared_length(environ)
            if length is not None and length > self.body_cap:
                return _refuse(environ, start_response, too_large(self.body_cap))
            if length is None:
                environ["wsgi.input"] = CappedInput(environ["wsgi.input"], self.body_cap, environ)
        return self.app(environ, start_response)


def _declared_length(environ: dict) -> int | None:
    if environ.get("wsgi.input_terminated"):
        return None  # chunked: no length up front, the reader enforces the cap
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _refuse(environ: dict, start_response: Callable, error: DriveError) -> list[bytes]:
    """Answer ``error`` without reading the body; the connection closes after the answer."""
    length = _declared_length(environ)
    if length is None or length > _DRAIN_SMALL:
        # Taking in a large body from whoever sends it is what this refusal is for.
        environ[CLOSE_CONNECTION] = True
    return error.respond(start_response)
