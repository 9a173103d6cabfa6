"""werkzeug's threaded dev server with HTTP/1.1 keep-alive and a stop that closes connections.

werkzeug's own handler closes every connection after one response (since 2.1), which costs a
TCP handshake and a 10 ms drain wait per request. Drive clients keep connections open, and so
does this handler: it bounds the request body by its length, drains what the app left unread,
and reuses the connection. The server remembers open connections so ``stop`` can cut them:
a client must not keep talking to a stopped emulator through an idle keep-alive socket.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from colab_magics.emulator.gate import CLOSE_CONNECTION, RAW_TARGET

log = logging.getLogger(__name__)

_DRAIN_LIMIT = 64 << 20
"""Unread request bytes beyond this are not drained; the connection is closed instead."""
_IDLE_TIMEOUT = 120.0
MAX_IDLE_CONNECTIONS = 128
"""Open connections waiting for a request beyond this are closed, oldest first."""
_BAD_LENGTH = (
    b'{"error":{"errors":[{"domain":"global","reason":"badRequest",'
    b'"message":"Invalid Content-Length."}],"code":400,"message":"Invalid Content-Length."}}'
)


class _BodyReader:
    """``wsgi.input`` bounded by Content-Length, counting what is left for the drain."""

    def __init__(self, raw: Any, length: int) -> None:
        self._raw = raw
        self.left = length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if size is None or size < 0 else min(size, self.left)
        data = self._raw.read(n)
        self.left -= len(data)
        if not data:
            self.left = 0  # the peer went away; nothing more will come
        return data

    def readline(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        n = self.left if size is None or size < 0 else min(size, self.left)
        data = self._raw.readline(n)
        self.left -= len(data)
        return data

    def __iter__(self):
        return iter(self.readline, b"")


class KeepAliveHandler(WSGIRequestHandler):
    """Runs the WSGI app per request and keeps the connection for the next one."""

    timeout = _IDLE_TIMEOUT
    protocol_version = "HTTP/1.1"  # werkzeug < 2.1 leaves HTTP/1.0, which closes every time

    def setup(self) -> None:
        super().setup()
        try:
            # Small answers go out at once instead of waiting on the client's delayed ACK.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        registry = getattr(self.server, "open_connections", None)
        if registry is not None:
            registry.add(self.connection, threading.current_thread())

    def handle_one_request(self) -> None:
        # Between requests (and before the first) a connection is idle: one an idle cap may cut.
        registry = getattr(self.server, "open_connections", None)
        if registry is not None:
            registry.idle(self.connection)
        super().handle_one_request()

    def finish(self) -> None:
        registry = getattr(self.server, "open_connections", None)
        if registry is not None:
            registry.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass  # no per-request access log

    def log_error(self, format: str, *args: Any) -> None:
        if not format.startswith("Request timed out"):  # an idle keep-alive connection
            super().log_error(format, *args)

    def run_wsgi(self) -> None:  # werkzeug calls this for every HTTP method
        registry = getattr(self.server, "open_connections", None)
        if registry is not None:
            registry.busy(self.connection)
        environ = self.make_environ()
        # http.server turns a leading "//" into "/" before werkzeug sees the path; keep the
        # target as sent, so the app can refuse an empty path segment as Google does.
        parts = self.requestline.split(" ")
        environ[RAW_TARGET] = parts[1] if len(parts) > 1 else ""
        body: _BodyReader | None = None
        if not environ.get("wsgi.input_terminated"):
            length = _content_length(environ.get("CONTENT_LENGTH"))
            if length is None:
                self._bad_length()
                return
            body = _BodyReader(self.rfile, length)
            environ["wsgi.input"] = body
        stream = environ["wsgi.input"]
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        response = _Response(self, environ)
        try:
            response.run(self.server.app)
        except (TimeoutError, ConnectionError, BrokenPipeError):
            self.close_connection = True
            return
        except Exception:
            self.close_connection = True
            log.exception("emulator: unhandled error on %s %s", self.command, self.path)
            if not response.headers_sent:
                try:
                    response.send_error_500()
                except OSError:
                    pass
            return
        if response.close_after or environ.get(CLOSE_CONNECTION):
            self.close_connection = True
        if self.close_connection:
            return
        # Leave the connection at the next request line: drain what the app did not read.
        try:
            if body is not None and body.left > _DRAIN_LIMIT:
                self.close_connection = True
                return
            while stream.read(1 << 20):
                pass
        except (OSError, ValueError):
            self.close_connection = True

    def _bad_length(self) -> None:
        """A Content-Length that is not a plain number: the body cannot be framed. 400, close."""
        self.close_connection = True
        head = (
            "HTTP/1.1 400 Bad Request\r\n"
            "Content-Type: application/json; charset=UTF-8\r\n"
            f"Content-Length: {len(_BAD_LENGTH)}\r\nConnection: close\r\n\r\n"
        )
        try:
            self.wfile.write(head.encode("latin-1") + _BAD_LENGTH)
        except OSError:
            pass


def _content_length(value: str | None) -> int | None:
    """The body length a Content-Length value declares (RFC 9110 8.6: 1*DIGIT); None if bad."""
    if value is None or value == "":
        return 0
    value = value.strip()
    if not value.isascii() or not value.isdigit():
        return None
    return int(value)


class _Response:
    """Status, headers and body of one answer, written as the app produces them."""

    def __init__(self, handler: KeepAliveHandler, environ: dict) -> None:
        self.handler = handler
        self.environ = environ
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False
        self.chunked = False
        self.close_after = False

    def start_response(self, status: str, headers: list, exc_info: Any = None) -> Callable:
        if exc_info and self.headers_sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, list(headers)
        return self.write

    def _head(self) -> bytes:
        assert self.status is not None, "write() before start_response"
        handler = self.handler
        code = int(self.status.split(None, 1)[0])
        names = {k.lower() for k, _ in self.headers}
        lines = [f"{handler.protocol_version} {self.status}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        if "date" not in names:
            lines.append(f"Date: {handler.date_time_string()}")
        no_body = code < 200 or code in (204, 304) or self.environ["REQUEST_METHOD"] == "HEAD"
        if "content-length" not in names and not no_body:
            if handler.request_version >= "HTTP/1.1":
                self.chunked = True
                lines.append("Transfer-Encoding: chunked")
            else:
                self.close_after = True
        if self.environ.get(CLOSE_CONNECTION):
            handler.close_connection = True
        if handler.close_connection or self.close_after:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def write(self, data: bytes) -> None:
        out = b""
        if not self.headers_sent:
            out = self._head()
            self.headers_sent = True
        if data and self.environ["REQUEST_METHOD"] != "HEAD":
            out += b"%x\r\n%b\r\n" % (len(data), data) if self.chunked else data
        if out:
            self.handler.wfile.write(out)

    def run(self, app: Callable) -> None:
        result = app(self.environ, self.start_response)
        try:
            for data in result:
                if data:
                    self.write(data)
            if not self.headers_sent:
                self.write(b"")
            if self.chunked:
                self.handler.wfile.write(b"0\r\n\r\n")
        finally:
            if hasattr(result, "close"):
                result.close()

    def send_error_500(self) -> None:
        body = (
            b'{"error":{"errors":[{"domain":"global","reason":"backendError",'
            b'"message":"Backend Error"}],"code":500,"message":"Backend Error"}}'
        )
        self.status = "500 Internal Server Error"
        self.headers = [
            ("Content-Type", "application/json; charset=UTF-8"),
            ("Content-Length", str(len(body))),
        ]
        self.handler.close_connection = True
        self.write(body)


class _Connections:
    """The server's open client connections and the threads serving them.

    Connections waiting for a request are idle; past ``max_idle`` of them the oldest is cut,
    so sockets that connect and send nothing cannot pile up a thread each.
    """

    def __init__(self, max_idle: int = MAX_IDLE_CONNECTIONS) -> None:
        self._lock = threading.Lock()
        self._open: dict[socket.socket, threading.Thread] = {}
        self._idle: dict[socket.socket, None] = {}  # insertion order: oldest first
        self.max_idle = max_idle

    def add(self, sock: socket.socket, thread: threading.Thread) -> None:
        with self._lock:
            self._open[sock] = thread

    def idle(self, sock: socket.socket) -> None:
        with self._lock:
            self._idle.pop(sock, None)
            self._idle[sock] = None
            cut = []
            while len(self._idle) > self.max_idle:
                oldest = next(iter(self._idle))
                del self._idle[oldest]
                cut.append(oldest)
        for victim in cut:
            try:
                victim.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def busy(self, sock: socket.socket) -> None:
        with self._lock:
            self._idle.pop(sock, None)

    def discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.pop(sock, None)
            self._idle.pop(sock, None)

    def close_all(self, wait: float) -> None:
        with self._lock:
            items = list(self._open.items())
        for sock, _ in items:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, thread in items:
            if thread is not threading.current_thread():
                thread.join(timeout=wait)


def make_keepalive_server(
    host: str, port: int, app: Callable, *, max_idle: int = MAX_IDLE_CONNECTIONS
) -> BaseWSGIServer:
    """A threaded werkzeug server for ``app`` speaking HTTP/1.1 with keep-alive.

    At most ``max_idle`` connections may wait for a request at once; the oldest go first.
    """
    server = make_server(host, port, app, threaded=True, request_handler=KeepAliveHandler)
    server.daemon_threads = True
    server.open_connections = _Connections(max_idle)  # type: ignore[attr-defined]
    return server


def close_connections(server: BaseWSGIServer, wait: float = 5.0) -> None:
    """Cut every open client connection and wait (a little) for their handlers to end."""
    registry = getattr(server, "open_connections", None)
    if registry is not None:
        registry.close_all(wait)
