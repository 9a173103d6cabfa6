"""Drive's batch endpoint: a WSGI middleware that splits multipart/mixed batches.

A batch is one ``POST /batch/drive/v3`` whose body holds up to 100 HTTP requests, each in an
``application/http`` part. Every part runs through the inner Drive app as a request of its own;
the answer is a multipart/mixed body with one ``application/http`` response per part, tagged
``Content-ID: <response-ORIGINAL>``. Google's batch guide promises no order: parts run, and
their answers come back, shuffled, so a client must match answers by Content-ID. A part may
name its URL absolutely (``GET https://www.googleapis.com/drive/v3/files/ID``), as the guide
writes them; only the path and query count.
"""

from __future__ import annotations

import io
import random
import re
import secrets
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs, unquote_to_bytes, urlsplit

from werkzeug.http import HTTP_STATUS_CODES

from colab_magics.emulator.errors import DriveError, bad_request

BATCH_PATHS = ("/batch/drive/v3", "/batch")
MAX_PARTS = 100
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
# Headers of the outer request that must not reach the parts (Google: "except for the
# Content- headers, headers of the outer request apply to every request in the batch").
_NOT_INHERITED = ("CONTENT_", "HTTP_CONTENT_")

StartResponse = Callable[..., object]


class BatchMiddleware:
    """Answers batch requests by running each part through ``app``; passes the rest on."""

    def __init__(self, app: Callable, *, rng: random.Random | None = None) -> None:
        self.app = app
        self.part_app = app
        """What each part runs through: ``app``, or ``app`` behind per-part fault dice."""
        self._rng = rng or random.Random()

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").rstrip("/") not in BATCH_PATHS:
            return self.app(environ, start_response)
        body = _read_body(environ)
        try:
            if environ.get("REQUEST_METHOD") != "POST":
                raise DriveError(405, "httpMethodNotAllowed", "Batch requests must be POST.")
            boundary = _boundary(environ.get("CONTENT_TYPE", ""))
            parts = split_multipart(body, boundary)
            if not parts:
                raise bad_request("A batch request must contain at least one part.")
            if len(parts) > MAX_PARTS:
                raise bad_request(
                    f"A batch request may contain at most {MAX_PARTS} calls; got {len(parts)}."
                )
            requests = [parse_part(part) for part in parts]
        except DriveError as e:
            return e.respond(start_response)
        order = list(range(len(requests)))
        self._rng.shuffle(order)
        answer = [self._run(environ, requests[i]) for i in order]
        self._rng.shuffle(answer)
        out_boundary = "batch_" + secrets.token_hex(12)
        payload = render_multipart(answer, out_boundary)
        start_response(
            "200 OK",
            [
                ("Content-Type", f"multipart/mixed; boundary={out_boundary}"),
                ("Content-Length", str(len(payload))),
            ],
        )
        return [payload]

    def _run(self, outer: dict, request: SubRequest) -> SubResponse:
        """Run one part through the inner app and capture its answer."""
        if request.error is not None:
            return SubResponse.from_error(request.content_id, request.error)
        environ = request.environ(outer)
        captured: list = []
        chunks: list[bytes] = []

        def start(status: str, headers: list, exc_info: object = None) -> Callable:
            captured[:] = [status, headers]
            return chunks.append

        result = self.part_app(environ, start)
        try:
            chunks.extend(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status, headers = captured
        return SubResponse(request.content_id, status, list(headers), b"".join(chunks))


class SubRequest:
    """One call inside a batch: its Content-ID and the HTTP request it carries."""

    def __init__(
        self,
        content_id: str | None,
        method: str = "GET",
        target: str = "/",
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        error: DriveError | None = None,
    ) -> None:
        self.content_id = content_id
        self.method = method
        self.target = target
        self.headers = headers or []
        self.body = body
        self.error = error

    def environ(self, outer: dict) -> dict:
        """A WSGI environ for this call, inheriting the outer request's non-Content headers."""
        url = urlsplit(self.target)
        environ = {
            key: value
            for key, value in outer.items()
            if key.startswith("HTTP_") and not key.startswith(_NOT_INHERITED)
        }
        for key in ("SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR", "SERVER_PROTOCOL"):
            if key in outer:
                environ[key] = outer[key]
        environ.update(
            {
                "wsgi.version": (1, 0),
                "wsgi.url_scheme": outer.get("wsgi.url_scheme", "http"),
                "wsgi.input": io.BytesIO(self.body),
                "wsgi.errors": outer.get("wsgi.errors"),
                "wsgi.multithread": outer.get("wsgi.multithread", True),
                "wsgi.multiprocess": False,
                "wsgi.run_once": False,
                "REQUEST_METHOD": self.method,
                "SCRIPT_NAME": "",
                "PATH_INFO": _wsgi_path(url.path),
                "QUERY_STRING": url.query,
                "CONTENT_LENGTH": str(len(self.body)),
            }
        )
        environ.pop("HTTP_CONTENT_LENGTH", None)
        for name, value in self.headers:
            key = name.upper().replace("-", "_")
            if key == "CONTENT_LENGTH":
                continue
            if key != "CONTENT_TYPE":
                key = "HTTP_" + key
            environ[key] = value
        return environ


class SubResponse:
    """The answer to one call, rendered as an ``application/http`` part."""

    def __init__(
        self, content_id: str | None, status: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        self.content_id = content_id
        self.status = status
        self.headers = headers
        self.body = body

    @classmethod
    def from_error(cls, content_id: str | None, error: DriveError) -> SubResponse:
        body = error.body_bytes()
        headers = [("Content-Type", "application/json; charset=UTF-8"), *error.headers.items()]
        return cls(content_id, _status_line(error.status), headers, body)

    def render(self) -> bytes:
        lines = ["Content-Type: application/http"]
        if self.content_id:
            lines.append(f"Content-ID: {_response_id(self.content_id)}")
        lines += ["", f"HTTP/1.1 {self.status}"]
        for name, value in self.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                lines.append(f"{name}: {value}")
        lines += [f"Content-Length: {len(self.body)}", "", ""]
        return "\r\n".join(lines).encode("latin-1") + self.body


def split_multipart(body: bytes, boundary: bytes) -> list[bytes]:
    """The parts of a multipart body, without their delimiter lines."""
    delimiter = b"--" + boundary
    segments = body.split(delimiter)
    parts = []
    for segment in segments[1:]:
        if segment.startswith(b"--"):
            break  # the close delimiter: what follows is the epilogue
        # Drop the rest of the delimiter line and the line break that belongs to the next one.
        _, _, segment = segment.partition(b"\n")
        if segment.endswith(b"\r\n"):
            segment = segment[:-2]
        elif segment.endswith(b"\n"):
            segment = segment[:-1]
        parts.append(segment)
    return parts


def parse_headers(block: bytes) -> list[tuple[str, str]]:
    """Header lines to (name, value) pairs, unfolding continuation lines (RFC 5322 2.2.3)."""
    unfolded: list[str] = []
    for line in re.split(r"\r?\n", block.decode("utf-8", "replace")):
        if not line:
            continue
        if line[0] in " \t" and unfolded:
            unfolded[-1] += line  # the leading whitespace stays: unfolding only drops the CRLF
        else:
            unfolded.append(line)
    pairs = []
    for line in unfolded:
        name, sep, value = line.partition(":")
        if not sep:
            raise bad_request(f"Malformed header line in batch part: {line[:80]!r}")
        pairs.append((name.strip(), value.strip()))
    return pairs


def parse_part(part: bytes) -> SubRequest:
    """One ``application/http`` part to the call it carries (or to the error it earns)."""
    head, inner = _split_head(part)
    part_headers = dict((k.lower(), v) for k, v in parse_headers(head))
    content_id = part_headers.get("content-id")
    ctype = part_headers.get("content-type", "application/http").split(";")[0].strip().lower()
    if ctype != "application/http":
        raise bad_request(f"Batch parts must be application/http, not {ctype}.")
    inner = inner.lstrip(b"\r\n")
    request_line, _, rest = inner.partition(b"\n")
    fields = request_line.decode("latin-1").strip().split(" ")
    target = _origin_form(fields[1]) if len(fields) in (2, 3) else None
    if target is None:
        raise bad_request(f"Malformed request line in batch part: {request_line[:80]!r}")
    method = fields[0].upper()
    head, body = _split_head(rest) if rest.strip() else (rest, b"")
    headers = parse_headers(head)
    length = next((v for k, v in headers if k.lower() == "content-length"), None)
    if length is not None and length.isdigit():
        body = body[: int(length)]
    request = SubRequest(content_id, method, target, headers, body)
    if _is_media(target):
        request.error = bad_request(
            "Media uploads and downloads are not supported in batch requests.",
            location="uploadType" if target.startswith("/upload/") else "alt",
        )
    return request


def render_multipart(responses: list[SubResponse], boundary: str) -> bytes:
    out = io.BytesIO()
    for response in responses:
        out.write(b"--" + boundary.encode() + b"\r\n")
        out.write(response.render())
        out.write(b"\r\n")
    out.write(b"--" + boundary.encode() + b"--\r\n")
    return out.getvalue()


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """Split at the first blank line: (header block, body)."""
    match = _BLANK_LINE.search(data)
    if match is None:
        return data, b""
    return data[: match.start()], data[match.end() :]


def _boundary(content_type: str) -> bytes:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/mixed":
        raise bad_request("A batch request must be multipart/mixed.")
    match = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', params, re.IGNORECASE)
    if match is None:
        raise bad_request("A multipart/mixed batch request needs a boundary.")
    return (match.group(1) or match.group(2)).encode("latin-1")


def _origin_form(target: str) -> str | None:
    """``/path?query`` of a part's target, which may also be an absolute http(s) URL."""
    if target.startswith("/"):
        return target
    url = urlsplit(target)
    if url.scheme in ("http", "https") and url.netloc and url.path.startswith("/"):
        return url.path + (f"?{url.query}" if url.query else "")
    return None


def _is_media(target: str) -> bool:
    url = urlsplit(target)
    return url.path.startswith("/upload/") or "media" in parse_qs(url.query).get("alt", [])


def _response_id(content_id: str) -> str:
    inner = content_id[1:-1] if content_id.startswith("<") and content_id.endswith(">") else ""
    return f"<response-{inner}>" if inner else f"<response-{content_id}>"


def _wsgi_path(path: str) -> str:
    # WSGI carries the path percent-decoded, as latin-1 characters of its UTF-8 bytes.
    return unquote_to_bytes(path).decode("latin-1")


def _status_line(status: int) -> str:
    return f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}"


def _read_body(environ: dict) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    if stream is None or length <= 0:
        return b""
    return stream.read(length)
