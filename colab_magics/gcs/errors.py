"""What the GCS side raises, and the one mapping from the client library's exceptions to it.

The classes are ``RuntimeError`` s with a message that says what to do; sync treats
:class:`GcsAuthError` and :class:`GcsUnreachable` as fatal for a whole run (no further object
can succeed: ``colab_magics.sync.errors.is_fatal``), retries :class:`GcsTransient`, and
reports the rest per object.
"""

from __future__ import annotations

EXTRA_HINT = "pip install 'colab_magics[gcs]'"


class GcsError(RuntimeError):
    """A GCS operation failed; ``status`` is the HTTP status when the server answered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GcsMissingLibrary(GcsError, ImportError):
    """google-cloud-storage is not installed."""


class GcsNotFound(GcsError):
    """No such bucket or object (or this account cannot see it)."""


class GcsAuthError(GcsError):
    """Credentials missing or refused for this bucket."""


class GcsPreconditionFailed(GcsError):
    """An ``ifGenerationMatch`` precondition failed: someone else wrote the object first."""


class GcsTransient(GcsError):
    """Worth another try: a 5xx, 429, or a connection dropped mid-body."""


class GcsUnreachable(GcsTransient):
    """No answer at all: the endpoint is down or the network is."""


class GcsIntegrityError(GcsError):
    """The bytes received or stored do not hash to what GCS says the object holds."""


AUTH_FIX = (
    "For a private bucket, sign in first: on Colab `from google.colab import auth; "
    "auth.authenticate_user()`, elsewhere `gcloud auth application-default login`; check "
    "that the account can read the bucket."
)


def map_exception(exc: BaseException, *, what: str = "") -> BaseException:
    """The :class:`GcsError` for a library or transport exception; anything else as it is."""
    if isinstance(exc, GcsError):
        return exc
    where = f"{what}: " if what else ""
    try:
        from google.api_core import exceptions as api
    except ImportError:  # pragma: no cover - google-api-core comes with google-auth's users
        return exc
    import google.auth.exceptions as auth
    import requests

    if isinstance(exc, api.RetryError) and exc.cause is not None:
        # The library's own retries gave up: what counts is the last failure.
        return map_exception(exc.cause, what=what)
    if isinstance(exc, (auth.DefaultCredentialsError, auth.RefreshError)):
        return GcsAuthError(f"{where}GCS refused the credentials ({exc}). {AUTH_FIX}")
    if isinstance(exc, api.GoogleAPICallError):
        status = getattr(exc, "code", None)
        message = getattr(exc, "message", None) or str(exc)
        if isinstance(exc, api.NotFound):
            return GcsNotFound(f"{where}not found on GCS ({message})", status=status)
        if isinstance(exc, (api.Unauthorized, api.Forbidden)):
            return GcsAuthError(f"{where}GCS said {status}: {message}. {AUTH_FIX}", status=status)
        if isinstance(exc, api.PreconditionFailed):
            return GcsPreconditionFailed(
                f"{where}the object changed on GCS while this ran (generation precondition "
                "failed); run it again",
                status=status,
            )
        if isinstance(exc, (api.TooManyRequests, api.ServerError, api.RequestRangeNotSatisfiable)):
            return GcsTransient(f"{where}GCS answered {status}: {message}", status=status)
        return GcsError(f"{where}GCS answered {status}: {message}", status=status)
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)) and not isinstance(
        exc, requests.exceptions.ChunkedEncodingError
    ):
        return GcsUnreachable(
            f"{where}GCS could not be reached ({type(exc).__name__}). Check the network, or "
            "that the endpoint (STORAGE_EMULATOR_HOST or the client's endpoint) is up."
        )
    if isinstance(
        exc, (requests.exceptions.ChunkedEncodingError, ConnectionError, TimeoutError)
    ) or type(exc).__module__.startswith(("urllib3", "http.client")):
        return GcsTransient(f"{where}the connection dropped mid-transfer ({type(exc).__name__})")
    if type(exc).__name__ == "InvalidResponse":  # google-resumable-media: a raw bad status
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status is not None and (status >= 500 or status == 429):
            return GcsTransient(f"{where}GCS answered {status}", status=status)
        return GcsError(f"{where}GCS answered {status}", status=status)
    return exc
