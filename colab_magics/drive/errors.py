"""Typed Drive errors with messages a notebook user can act on, and the one mapping to them.

Everything the client raises for a failed Drive call is a :class:`DriveError`. The mapping
reads the HTTP status and Google's JSON error ``reason`` (``notFound``,
``storageQuotaExceeded``, ``userRateLimitExceeded``...), because the status alone is ambiguous:
403 is a full Drive, a rate limit or a permission problem depending on the reason.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Mapping
from typing import Any

import google.auth.exceptions
import httplib2
from googleapiclient.errors import HttpError

_RATE_LIMIT_REASONS = frozenset({"userRateLimitExceeded", "rateLimitExceeded"})
_QUOTA_REASONS = frozenset({"storageQuotaExceeded", "quotaExceeded"})
_AUTH_REASONS = frozenset({"authError", "invalidCredentials"})
# "required" is a 401's reason for missing credentials ("Login Required") and a 400's for a
# missing parameter ("Required parameter: mimeType"): only the status tells them apart.


class DriveError(Exception):
    """A Drive operation failed. ``status`` and ``reason`` are Drive's, when it answered."""

    def __init__(
        self, message: str, *, status: int | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class DriveNotFound(DriveError):
    """The file, folder or path does not exist (or this account cannot see it)."""


class DriveQuotaError(DriveError):
    """Drive is full: the upload was refused and nothing new was kept."""


class DriveAuthError(DriveError):
    """The credentials were refused: expired, revoked or wrong token, or a missing scope."""


class DriveRateLimited(DriveError):
    """Drive asked us to slow down (429 or a rate-limit 403); retried, then given up."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class DriveTransientError(DriveError):
    """A failure worth retrying: a 5xx from Drive or a dropped connection."""


class DriveIntegrityError(DriveError):
    """The bytes Drive holds are not the bytes we sent or expected (md5 mismatch)."""


class DriveNotDownloadable(DriveError):
    """A Google-native file (Docs, Sheets, Slides, a shortcut): it has no bytes of its own to
    download; Drive only exports it to another format (``files.export``)."""


class DriveDuplicateError(DriveError):
    """A path names more than one file (Drive allows duplicate names) and a unique one was asked."""

    def __init__(self, message: str, *, ids: list[str] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.ids = list(ids or [])


class DriveConflictError(DriveError):
    """Drive refused a write that clashes with what exists (e.g. a file id already in use)."""


# Transport failures: the request may or may not have reached Drive; the answer is lost.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # reset, refused, aborted, broken pipe
    TimeoutError,  # socket.timeout is an alias since 3.10
    socket.gaierror,
    ssl.SSLError,
    http.client.HTTPException,  # IncompleteRead, RemoteDisconnected, BadStatusLine
    httplib2.HttpLib2Error,  # ServerNotFoundError, RedirectLimit, ...
    google.auth.exceptions.TransportError,
)


def error_details(content: bytes | str | None) -> tuple[str | None, str | None]:
    """``(reason, message)`` from Google's JSON error body, ``(None, None)`` if it has none."""
    if not content:
        return None, None
    try:
        body = json.loads(content)
        error = body["error"]
    except (ValueError, KeyError, TypeError):
        return None, None
    if not isinstance(error, dict):
        return None, str(error)
    message = error.get("message")
    errors = error.get("errors") or []
    reason = errors[0].get("reason") if errors and isinstance(errors[0], dict) else None
    return reason, message


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The ``Retry-After`` header in seconds (only the delta-seconds form is used by Google)."""
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_from_response(
    status: int,
    content: bytes | str | None,
    headers: Mapping[str, str] | None = None,
    *,
    what: str = "",
) -> DriveError:
    """The typed error for one non-2xx Drive answer. ``what`` names the object, for messages."""
    reason, message = error_details(content)
    detail = f"{message} " if message else ""
    subject = f" ({what})" if what else ""
    kw: dict[str, Any] = {"status": status, "reason": reason}
    if status == 401 or reason in _AUTH_REASONS:
        return DriveAuthError(
            f"Drive refused the credentials{subject}: {detail}"
            "Reconnect (run %drive_connect again) or check the token / service-account file.",
            **kw,
        )
    if reason in _QUOTA_REASONS:
        return DriveQuotaError(
            f"Your Google Drive is full{subject}; the write was refused. "
            "Free space (%drive_purge PATH deletes for good; trashed files still count until "
            "%drive_quota --empty-trash) or buy more storage.",
            **kw,
        )
    if status == 429 or reason in _RATE_LIMIT_REASONS:
        return DriveRateLimited(
            f"Drive is rate-limiting requests{subject}: {detail}"
            "Wait a minute and retry, or use fewer parallel workers.",
            retry_after=retry_after_seconds(headers),
            **kw,
        )
    if status == 404 and reason is None:
        # Not Drive's JSON "notFound": the address itself is unknown (an HTML 404 page).
        return DriveError(
            f"Drive has no such address{subject} (HTTP 404 without an error body): check the "
            "server URL the client was connected to.",
            **kw,
        )
    if status == 404 or reason == "notFound":
        return DriveNotFound(
            f"Not found on Drive{subject}. Check the path or id, and that this account "
            "(and the drive.file scope, which only sees files this app made) can see it.",
            **kw,
        )
    if reason in ("fileNotDownloadable", "fileNotExportable"):
        return DriveNotDownloadable(
            f"Drive cannot send the bytes of this file{subject}: {detail}A Google Docs, Sheets "
            "or Slides file or a shortcut has no content of its own; export it (File > "
            "Download in Drive, or files.export) or skip it.",
            **kw,
        )
    if status == 409 or reason in ("duplicate", "fileIdInUse"):
        return DriveConflictError(f"Drive refused a conflicting write{subject}: {detail}", **kw)
    if status >= 500 or reason in ("backendError", "internalError"):
        return DriveTransientError(
            f"Drive had a temporary failure{subject} (HTTP {status}): {detail}"
            "It was retried; try again in a few minutes.",
            **kw,
        )
    if status == 403:
        return DriveAuthError(
            f"Drive denied access{subject}: {detail}"
            "The account or scope may not allow this; connect with scope='drive' to reach "
            "files this app did not create.",
            **kw,
        )
    return DriveError(f"Drive rejected the request{subject} (HTTP {status}): {detail}", **kw)


def map_exception(exc: BaseException, *, what: str = "") -> BaseException:
    """The :class:`DriveError` for an exception from the client library or the transport.

    Exceptions that are not about Drive (a local ``FileNotFoundError``, a bug) come back as
    they are, so they are never disguised as Drive failures.
    """
    if isinstance(exc, DriveError):
        return exc
    if isinstance(exc, HttpError):
        headers = dict(exc.resp.items()) if exc.resp is not None else {}
        status = int(getattr(exc.resp, "status", 0) or 0)
        return error_from_response(status, exc.content, headers, what=what)
    if isinstance(exc, google.auth.exceptions.RefreshError):
        # A 401 with credentials that cannot refresh (a fixed token) surfaces as this.
        return DriveAuthError(
            "Drive refused the credentials and they could not be refreshed "
            f"{'(' + what + ') ' if what else ''}"
            "(expired or wrong token). Reconnect with %drive_connect.",
            status=401,
            reason="authError",
        )
    if isinstance(exc, TRANSPORT_ERRORS):
        return DriveTransientError(
            f"The connection to Drive failed{' (' + what + ')' if what else ''}: "
            f"{type(exc).__name__}: {exc}. Check the network; the operation can be retried."
        )
    return exc


def is_transport_error(exc: BaseException) -> bool:
    """True for a connection-level failure (the answer, if any, was lost)."""
    return isinstance(exc, TRANSPORT_ERRORS)
