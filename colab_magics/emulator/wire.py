"""HTTP details shared by the handlers: JSON in and out, parameters, ranges, request bodies."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Request, Response

from colab_magics.emulator.errors import DriveError, bad_request, invalid
from colab_magics.emulator.gate import CLOSE_CONNECTION, METADATA_BODY_CAP, too_large

JSON_TYPE = "application/json; charset=UTF-8"
READ_BLOCK = 1 << 20

# What a cut connection looks like to the reader, whatever werkzeug version is underneath.
# (Not every OSError: a failed write to disk must not pass for a client going away.)
DISCONNECTED = (ClientDisconnected, ConnectionError, TimeoutError)


def json_response(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")),
        status=status,
        headers=headers,
        content_type=JSON_TYPE,
    )


def error_response(error: DriveError) -> Response:
    return Response(
        error.body_bytes(), status=error.status, headers=error.headers, content_type=JSON_TYPE
    )


def parse_json(data: bytes) -> dict[str, Any]:
    """A JSON object request body; empty means ``{}``; anything else is 400 ``parseError``."""
    if not data.strip():
        return {}
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise DriveError(400, "parseError", "Parse Error") from None
    if not isinstance(value, dict):
        raise DriveError(400, "parseError", "Parse Error")
    return value


def read_small_body(request: Request, limit: int = METADATA_BODY_CAP) -> bytes:
    """The whole request body; past ``limit`` a 413 (unread, when its length says so)."""
    if request.content_length is not None and request.content_length > limit:
        request.environ[CLOSE_CONNECTION] = True
        raise too_large(limit)
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        request.environ[CLOSE_CONNECTION] = True
        raise too_large(limit)
    return data


def read_json_body(request: Request, limit: int = METADATA_BODY_CAP) -> dict[str, Any]:
    return parse_json(read_small_body(request, limit))


def param_bool(request: Request, name: str, default: bool = False) -> bool:
    value = request.args.get(name)
    if value is None:
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise invalid(
        f"Invalid value '{value}'. Values must match the following regular "
        "expression: 'true|false'",
        location=name,
    )


def param_int(request: Request, name: str, default: int, *, minimum: int = 0) -> int:
    value = request.args.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise invalid(f"Invalid value '{value}'. Values must be integers.", location=name) from None
    if number < minimum:
        raise invalid(
            f"Invalid value '{value}'. Values must be within the range: [{minimum}, ...]",
            location=name,
        )
    return number


def param_list(request: Request, name: str) -> list[str]:
    value = request.args.get(name) or ""
    return [p.strip() for p in value.split(",") if p.strip()]


_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


def parse_content_range(header: str) -> tuple[int | None, int | None, int | None]:
    """``Content-Range`` of a resumable chunk as ``(first, last, total)``; ``None`` for ``*``."""
    m = _CONTENT_RANGE.fullmatch(header.strip())
    if m is None:
        raise bad_request(f"Failed to parse Content-Range header: {header!r}.")
    first = int(m.group(1)) if m.group(1) is not None else None
    last = int(m.group(2)) if m.group(2) is not None else None
    total = None if m.group(3) == "*" else int(m.group(3))
    if first is not None and last is not None and last < first:
        raise bad_request(f"Failed to parse Content-Range header: {header!r}.")
    if total is not None and last is not None and last >= total:
        raise bad_request(f"Content-Range {header!r} ends past the total size.")
    return first, last, total


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``(start, end_inclusive)`` a ``Range`` header asks of ``size`` bytes.

    ``None`` means the whole content (no header, or one we do not honour, such as several
    ranges, which HTTP lets a server ignore). Unsatisfiable ranges raise ``RangeError``.
    """
    if not header:
        return None
    m = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):
        suffix = int(m.group(2))
        if suffix == 0 or size == 0:
            raise RangeError(size)
        return max(0, size - suffix), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else None
    if end is not None and end < start:
        return None  # syntactically invalid: ignored, as HTTP says
    if start >= size:
        raise RangeError(size)
    end = size - 1 if end is None else end
    return start, min(end, size - 1)


class RangeError(Exception):
    """A ``Range`` no byte of the content satisfies (HTTP 416)."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class BodyCut(ConnectionError):
    """The request body ended before its Content-Length: the client went away."""


def iter_body(environ: dict, limit: int | None = None) -> Iterator[bytes]:
    """The request body in blocks of up to 1 MiB, at most ``limit`` bytes.

    Bytes that arrived before a cut are yielded first; then ``BodyCut`` is raised. (werkzeug's
    own LimitedStream throws away a short last read in some versions, and a resumable upload
    must keep every byte that arrived.)
    """
    stream = environ["wsgi.input"]
    left: int | None = None
    if not environ.get("wsgi.input_terminated"):
        try:
            left = max(0, int(environ.get("CONTENT_LENGTH") or 0))
        except ValueError:
            left = 0
    if limit is not None:
        left = limit if left is None else min(left, limit)
    while left is None or left > 0:
        data = stream.read(READ_BLOCK if left is None else min(READ_BLOCK, left))
        if not data:
            if left:
                raise BodyCut("the request body ended early")
            return
        if left is not None:
            left -= len(data)
        yield data
