"""Error mapping and the retry policy, without a server: injected sleep, clock and dice."""

from __future__ import annotations

import http.client
import json

import google.auth.exceptions
import httplib2
import pytest
from googleapiclient.errors import HttpError

from colab_magics.drive.errors import (
    DriveAuthError,
    DriveError,
    DriveNotDownloadable,
    DriveNotFound,
    DriveQuotaError,
    DriveRateLimited,
    DriveTransientError,
    error_from_response,
    map_exception,
)
from colab_magics.drive.retry import Pacer, Retrier, RetryPolicy


def body(status: int, reason: str, message: str = "msg") -> bytes:
    return json.dumps(
        {"error": {"code": status, "message": message, "errors": [{"reason": reason}]}}
    ).encode()


def http_error(status: int, reason: str, headers: dict[str, str] | None = None) -> HttpError:
    resp = httplib2.Response({"status": str(status), **(headers or {})})
    return HttpError(resp, body(status, reason), uri="http://x/")


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        (403, "storageQuotaExceeded", DriveQuotaError),
        (404, "notFound", DriveNotFound),
        (401, "authError", DriveAuthError),
        (429, "rateLimitExceeded", DriveRateLimited),
        (403, "userRateLimitExceeded", DriveRateLimited),
        (403, "rateLimitExceeded", DriveRateLimited),
        (500, "backendError", DriveTransientError),
        (503, "backendError", DriveTransientError),
        (403, "insufficientFilePermissions", DriveAuthError),
        (400, "badRequest", DriveError),
        # A 400 "required" is a missing parameter ("Required parameter: mimeType"), not auth;
        # only a 401 "required" ("Login Required") is about credentials.
        (400, "required", DriveError),
        (401, "required", DriveAuthError),
        (403, "fileNotDownloadable", DriveNotDownloadable),
    ],
)
def test_http_errors_map_by_status_and_reason(status, reason, kind):
    error = map_exception(http_error(status, reason), what="x.pt")
    assert type(error) is kind
    assert error.status == status and error.reason == reason
    assert "x.pt" in str(error)


def test_a_404_without_google_s_error_body_is_not_a_missing_file():
    """Google's front end answers an unknown URL with an HTML 404; only Drive's JSON
    ``notFound`` means the file or folder is not there."""
    resp = httplib2.Response({"status": "404", "content-type": "text/html"})
    error = map_exception(HttpError(resp, b"<html>Not Found</html>", uri="http://x/"), what="y")
    assert type(error) is DriveError and error.status == 404
    assert "address" in str(error)


def test_quota_message_says_what_to_do():
    error = error_from_response(403, body(403, "storageQuotaExceeded"))
    assert "full" in str(error) and "trash" in str(error)


def test_retry_after_is_read_from_the_response():
    error = map_exception(http_error(429, "rateLimitExceeded", {"retry-after": "7"}))
    assert isinstance(error, DriveRateLimited) and error.retry_after == 7.0


def test_refresh_error_is_an_auth_error():
    error = map_exception(google.auth.exceptions.RefreshError("no refresh token"))
    assert isinstance(error, DriveAuthError) and error.status == 401


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError(),
        TimeoutError(),
        http.client.IncompleteRead(b"ab", 10),
        http.client.RemoteDisconnected(),
        httplib2.ServerNotFoundError(),
    ],
)
def test_transport_errors_are_transient(exc):
    assert isinstance(map_exception(exc), DriveTransientError)


def test_foreign_errors_pass_through():
    exc = FileNotFoundError("local.pt")
    assert map_exception(exc) is exc


class Script:
    """A callable that raises the scripted exceptions, then returns 'ok'."""

    def __init__(self, *excs: BaseException) -> None:
        self.excs = list(excs)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.excs:
            raise self.excs.pop(0)
        return "ok"


def make_retrier(policy=None, rand=lambda: 1.0):
    sleeps: list[float] = []
    return Retrier(policy or RetryPolicy(), sleep=sleeps.append, rand=rand), sleeps


def test_backoff_doubles_with_full_jitter_up_to_the_cap():
    retrier, sleeps = make_retrier(RetryPolicy(max_attempts=8, base_delay=1, max_delay=8))
    fn = Script(*[http_error(503, "backendError")] * 6)
    assert retrier.call(fn) == "ok"
    assert sleeps == [1, 2, 4, 8, 8, 8]
    assert retrier.retries == 6


def test_jitter_draws_within_the_bound():
    retrier, sleeps = make_retrier(RetryPolicy(base_delay=2), rand=lambda: 0.25)
    retrier.call(Script(http_error(500, "backendError"), http_error(500, "backendError")))
    assert sleeps == [0.5, 1.0]


def test_retry_after_is_honoured_as_a_minimum():
    retrier, sleeps = make_retrier(RetryPolicy(base_delay=0.1))
    retrier.call(Script(http_error(429, "rateLimitExceeded", {"retry-after": "3"})))
    assert sleeps == [3.0]


def test_a_retry_after_beyond_the_limit_gives_up_at_once():
    retrier, sleeps = make_retrier(RetryPolicy(max_retry_after=10))
    with pytest.raises(DriveRateLimited):
        retrier.call(Script(http_error(429, "rateLimitExceeded", {"retry-after": "3600"})))
    assert sleeps == []


@pytest.mark.parametrize(
    "exc",
    [
        http_error(403, "storageQuotaExceeded"),
        http_error(404, "notFound"),
        http_error(401, "authError"),
        http_error(400, "badRequest"),
        google.auth.exceptions.RefreshError("x"),
    ],
)
def test_permanent_errors_are_raised_at_once(exc):
    retrier, sleeps = make_retrier()
    fn = Script(exc)
    with pytest.raises(DriveError):
        retrier.call(fn)
    assert fn.calls == 1 and sleeps == []


def test_transport_errors_are_retried_and_reported():
    retrier, sleeps = make_retrier(RetryPolicy(base_delay=0.5))
    seen = []
    fn = Script(ConnectionResetError(), http.client.IncompleteRead(b"", 5))
    assert retrier.call(fn, on_retry=lambda e, d: seen.append((type(e), d))) == "ok"
    assert seen == [(DriveTransientError, 0.5), (DriveTransientError, 1.0)]


def test_gives_up_after_max_attempts_with_the_typed_error():
    retrier, sleeps = make_retrier(RetryPolicy(max_attempts=3))
    fn = Script(*[http_error(503, "backendError")] * 5)
    with pytest.raises(DriveTransientError) as info:
        retrier.call(fn)
    assert fn.calls == 3 and len(sleeps) == 2
    assert isinstance(info.value.__cause__, HttpError)


def test_foreign_exceptions_are_not_retried():
    retrier, sleeps = make_retrier()
    fn = Script(ValueError("bug"))
    with pytest.raises(ValueError):
        retrier.call(fn)
    assert fn.calls == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pacer_allows_a_burst_then_holds_the_rate():
    clock = FakeClock()
    pacer = Pacer(rate=10, burst=5, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        assert pacer.acquire() == 0
    for _ in range(20):
        pacer.acquire()
    # 25 requests at 10/s with a burst of 5: the last goes out 2 s after the first.
    assert clock.now == pytest.approx(2.0)


def test_pacer_charges_a_batch_by_its_calls():
    clock = FakeClock()
    pacer = Pacer(rate=100, burst=100, clock=clock, sleep=clock.sleep)
    pacer.acquire(100)
    pacer.acquire(50)
    assert clock.now == pytest.approx(0.5)


def test_pacer_off_never_waits():
    assert Pacer(None).acquire(1e9) == 0
