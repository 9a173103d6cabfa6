"""A ranged ``alt=media`` GET whose body is left unread, to be read into the caller's buffers.

httplib2 returns a whole response body as one new ``bytes``; a big download instead reads its
body straight into reused buffers (``readinto``), one request for all the bytes still
missing. The request is what :meth:`Transport.send` would send: paced, counted, authorized by
the transport's credentials (refreshed once on a 401, as google-auth's own transports do),
TLS verified against httplib2's CA bundle.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.parse
import urllib.request
from typing import Any

import google_auth_httplib2
import httplib2

from colab_magics.drive.errors import error_from_response
from colab_magics.drive.transport import Transport

_ERROR_BODY_LIMIT = 1 << 16


class RangeResponse:
    """An open answer to a ranged GET: ``readinto`` the body, then :meth:`close`.

    ``start`` is the offset of the first body byte in the file (0 where the server ignored
    ``Range`` and sent everything).
    """

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp
        self.start = _content_start(resp)

    def readinto(self, buffer: memoryview) -> int:
        """Bytes read into ``buffer`` (0 only at the body's end); a cut raises IncompleteRead."""
        return self._resp.readinto(buffer)

    def abort(self) -> None:
        """Make a ``readinto`` blocked in another thread return now (it raises there)."""
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._conn.close()


def get_range(
    transport: Transport, url: str, start: int, end: int, *, what: str = ""
) -> RangeResponse:
    """``GET url`` with ``Range: bytes=start-end``; a status other than 200/206 raises the
    typed :class:`DriveError` (transport failures propagate as raised, for the retrier)."""
    refreshed = False
    while True:
        transport.retrier.pacer.acquire()
        transport.count()
        headers = {"Range": f"bytes={start}-{end}", "Accept-Encoding": "identity"}
        if transport.credentials is not None:
            transport.credentials.before_request(_auth_request(transport), "GET", url, headers)
        conn = _connect(url, transport.timeout)
        try:
            parts = urllib.parse.urlsplit(url)
            conn.request("GET", f"{parts.path}?{parts.query}", headers=headers)
            resp = conn.getresponse()
            if resp.status in (200, 206):
                return RangeResponse(conn, resp)
            body = resp.read(_ERROR_BODY_LIMIT)
            info = {k.lower(): v for k, v in resp.getheaders()}
        except BaseException:
            conn.close()
            raise
        conn.close()
        if resp.status == 401 and not refreshed and transport.credentials is not None:
            # An expired access token: refresh once and ask again (a fixed token raises
            # google-auth's RefreshError here, which callers map to an auth error).
            transport.credentials.refresh(_auth_request(transport))
            refreshed = True
            continue
        raise error_from_response(resp.status, body, info, what=what)


def _auth_request(transport: Transport) -> Any:
    """google-auth's request adapter, for token refreshes (over a fresh httplib2 Http)."""
    return google_auth_httplib2.Request(httplib2.Http(timeout=transport.timeout))


def _connect(url: str, timeout: float | None) -> http.client.HTTPConnection:
    """A connection to ``url``'s host; for https through the environment's proxy where one is
    set (a CONNECT tunnel), as httplib2 goes for the other requests. Plain http (the local
    emulator) always connects directly."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port
    if parts.scheme != "https":
        return http.client.HTTPConnection(host, port, timeout=timeout)
    context = ssl.create_default_context(cafile=httplib2.CA_CERTS)
    proxy = urllib.request.getproxies().get("https")
    if not proxy or urllib.request.proxy_bypass(host):
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    via = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    conn = http.client.HTTPSConnection(
        via.hostname, via.port or 8080, timeout=timeout, context=context
    )
    conn.set_tunnel(host, port)
    return conn


def _content_start(resp: http.client.HTTPResponse) -> int:
    """Where the body starts in the file: ``Content-Range: bytes a-b/n`` gives ``a``."""
    if resp.status != 206:
        return 0
    value = resp.getheader("Content-Range", "")
    try:
        unit, _, span = value.partition(" ")
        return int(span.split("-", 1)[0]) if unit == "bytes" else 0
    except ValueError:
        raise http.client.HTTPException(f"bad Content-Range {value!r}") from None
