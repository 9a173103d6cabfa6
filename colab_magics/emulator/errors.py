"""Drive's error responses: Google's JSON error shape with Drive's reasons."""

from __future__ import annotations

import json
from collections.abc import Callable

from werkzeug.http import HTTP_STATUS_CODES

_DOMAINS = {
    "rateLimitExceeded": "usageLimits",
    "userRateLimitExceeded": "usageLimits",
    "dailyLimitExceeded": "usageLimits",
    "sharingRateLimitExceeded": "usageLimits",
    "quotaExceeded": "usageLimits",
}
"""Error domains of Drive's "Resolve errors" guide; every other reason is ``global``."""


class DriveError(Exception):
    """An error answer, raised anywhere in the emulator and rendered by the app."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        location: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.location = location
        self.headers = headers or {}

    def body(self) -> dict:
        """The JSON body Google APIs send for this error."""
        detail: dict[str, str] = {
            "domain": _DOMAINS.get(self.reason, "global"),
            "reason": self.reason,
            "message": self.message,
        }
        if self.location:
            detail["locationType"] = "parameter"
            detail["location"] = self.location
        return {"error": {"errors": [detail], "code": self.status, "message": self.message}}

    def status_line(self) -> str:
        return f"{self.status} {HTTP_STATUS_CODES.get(self.status, 'Error')}"

    def body_bytes(self) -> bytes:
        return json.dumps(self.body()).encode()

    def respond(self, start_response: Callable[..., object]) -> list[bytes]:
        """Answer this error as a WSGI response (for the layers outside the app)."""
        body = self.body_bytes()
        start_response(
            self.status_line(),
            [
                ("Content-Type", "application/json; charset=UTF-8"),
                ("Content-Length", str(len(body))),
                *self.headers.items(),
            ],
        )
        return [body]


def not_found(file_id: str) -> DriveError:
    return DriveError(404, "notFound", f"File not found: {file_id}.", location="fileId")


def bad_request(message: str, *, location: str | None = None) -> DriveError:
    return DriveError(400, "badRequest", message, location=location)


def invalid(message: str, *, location: str | None = None) -> DriveError:
    return DriveError(400, "invalid", message, location=location)


def quota_exceeded() -> DriveError:
    return DriveError(
        403,
        "storageQuotaExceeded",
        "The user's Drive storage quota has been exceeded.",
    )


def auth_error() -> DriveError:
    return DriveError(
        401,
        "authError",
        "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        location="Authorization",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )
