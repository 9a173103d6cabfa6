"""Request observers: an in-process hook that sees (and may hold, drop or follow) each request.

Used by :meth:`FaultMiddleware.on_request`; also the body helpers the fault layer shares.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

from colab_magics.emulator.wire import READ_BLOCK

StartResponse = Callable[..., Any]

DROP = "drop"
"""An observer's answer: cut the connection unserved, as if the request never arrived whole."""


@dataclasses.dataclass
class RequestEvent:
    """One Drive request as an observer sees it, before it is served."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names in lower case (``content-type``, ``content-range``, ...)."""
    _environ: dict = dataclasses.field(repr=False)
    _body: bytes | None = dataclasses.field(default=None, repr=False)

    def body(self, limit: int = 1 << 16) -> bytes | None:
        """The request body if it is at most ``limit`` bytes, else None.

        Reading waits for the whole body; the app still gets it, from memory.
        """
        if self._body is None:
            if content_length(self._environ) > limit:
                return None
            self._body = read_body(self._environ, content_length(self._environ))
            self._environ["wsgi.input"] = io.BytesIO(self._body)
        return self._body


Observer = Callable[[RequestEvent], Any]
"""Called in the serving thread before a Drive request is served; see ``on_request``."""


def make_event(environ: dict) -> RequestEvent:
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k[:5] == "HTTP_"}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return RequestEvent(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=environ.get("PATH_INFO", ""),
        query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
        headers=headers,
        _environ=environ,
    )


class _Followed:
    """A response body that reports its status once the server has sent it (on ``close``)."""

    def __init__(self, body: Iterable[bytes], status: list[str], done: Callable) -> None:
        self._body = body
        self._status = status
        self._done = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            if hasattr(self._body, "close"):
                self._body.close()
        finally:
            self._done(self._status[0] if self._status else None)


def followed(
    serve: Callable, environ: dict, start_response: StartResponse, done: Callable
) -> Iterable[bytes]:
    status: list[str] = []

    def capture(line: str, headers: list, exc_info: Any = None) -> Callable:
        status[:] = [line]
        return start_response(line, headers, exc_info)

    try:
        body = serve(environ, capture)
    except BaseException:
        done(None)
        raise
    return _Followed(body, status, done)


def content_length(environ: dict) -> int:
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def read_body(environ: dict, n: int) -> bytes:
    """Read up to ``n`` bytes of the request body (never past Content-Length)."""
    stream = environ.get("wsgi.input")
    if stream is None or n <= 0:
        return b""
    parts = []
    while n > 0:
        data = stream.read(min(n, READ_BLOCK))
        if not data:
            break
        parts.append(data)
        n -= len(data)
    return b"".join(parts)
