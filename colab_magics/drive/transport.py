"""Per-thread authorized HTTP connections and the two ways of sending a Drive call.

httplib2 connection objects are not thread-safe, so each thread gets its own (made lazily by a
factory); the one service object is shared and each request runs with ``execute(http=...)``,
as the client library documents for threads. Library calls go through :meth:`Transport.execute`;
the resumable upload and ranged download speak HTTP themselves through :meth:`Transport.send`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from colab_magics.drive.errors import DriveError, error_from_response
from colab_magics.drive.retry import Retrier
from colab_magics.drive.service import authorized_http, build_drive_service

HttpFactory = Callable[[], Any]


class Transport:
    """A Drive endpoint plus credentials: the shared service, per-thread Http, one retrier."""

    def __init__(
        self,
        root_url: str,
        credentials: Any,
        *,
        retrier: Retrier | None = None,
        http_factory: HttpFactory | None = None,
        timeout: float | None = 60,
    ) -> None:
        self.root_url = root_url if root_url.endswith("/") else root_url + "/"
        self.credentials = credentials
        self.timeout = timeout
        self.retrier = retrier or Retrier()
        self._factory = http_factory or (lambda: authorized_http(credentials, timeout=timeout))
        self._local = threading.local()
        self.service = build_drive_service(self.root_url, http=self._factory())
        # Each ``service.files()`` call builds every method from the discovery document
        # (about 10 ms of CPU); the resources are made once and shared by all threads.
        self.files = self.service.files()
        self.changes = self.service.changes()
        self.about = self.service.about()
        self._lock = threading.Lock()
        self.requests = 0
        """HTTP requests sent (all threads, retries included)."""

    @property
    def http(self) -> Any:
        """This thread's authorized Http (made on first use)."""
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = self._factory()
        return http

    @property
    def files_url(self) -> str:
        return self.root_url + "drive/v3/files"

    @property
    def upload_url(self) -> str:
        return self.root_url + "upload/drive/v3/files"

    def count(self, n: int = 1) -> None:
        with self._lock:
            self.requests += n

    def execute(
        self,
        make_request: Callable[[], Any],
        *,
        what: str = "",
        on_retry: Callable[[DriveError, float], None] | None = None,
    ) -> Any:
        """Build (``make_request()``) and execute a library request, with retries.

        The request is rebuilt for each attempt, so a retry never reuses a half-consumed body.
        """

        def attempt() -> Any:
            self.count()
            return make_request().execute(http=self.http, num_retries=0)

        return self.retrier.call(attempt, what=what, on_retry=on_retry)

    def send(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 204, 206),
        what: str = "",
    ) -> tuple[Any, bytes]:
        """One HTTP request, no retries; a status outside ``ok`` raises the typed error.

        Transport failures propagate as raised; callers classify them with the retrier.
        """
        self.retrier.pacer.acquire()
        self.count()
        resp, content = self.http.request(url, method, body=body, headers=dict(headers or {}))
        if resp.status not in ok:
            raise error_from_response(resp.status, content, resp, what=what)
        return resp, content
