"""The one place the clients retry: backoff with full jitter, Retry-After, and a pacer.

Every Drive call goes through :meth:`Retrier.call`, with the client library's own retries off
(``execute(num_retries=0)``). The library's ``num_retries`` was not enough: it ignores
``Retry-After``, lets ``http.client.IncompleteRead`` and most ``httplib2`` errors through, sleeps
with an uninjectable ``time.sleep``, and cannot tell anyone that it is retrying. Here:

- retried: 5xx, 429 (waiting at least ``Retry-After``), 403 ``userRateLimitExceeded`` /
  ``rateLimitExceeded``, and transport errors (reset, refused, timeout, cut body);
- raised at once: quota, not found, auth, bad request — retrying cannot fix them.

Retrying a create is safe only because the client makes creates idempotent (pre-generated
file ids) and resumable uploads ask the server where they stand before resending.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from colab_magics.drive.errors import (
    DriveError,
    DriveRateLimited,
    DriveTransientError,
    map_exception,
)

T = TypeVar("T")

# Drive allows about 12,000 queries per minute per user (200/s); stay well under it, since
# other clients of the same account (the Colab mount, a browser) share that budget.
DEFAULT_RATE = 120.0
DEFAULT_BURST = 60.0


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to retry a failed call."""

    max_attempts: int = 10
    """Total tries of one call, the first included."""
    base_delay: float = 1.0
    """Upper bound of the first backoff; doubles each retry (full jitter picks within it)."""
    max_delay: float = 32.0
    """Ceiling of one backoff."""
    max_retry_after: float = 300.0
    """A Retry-After longer than this is not waited for: the call fails as rate limited."""

    def backoff(self, retry: int, rand: Callable[[], float]) -> float:
        """Seconds before retry number ``retry`` (1-based): uniform in [0, min(cap, base*2^r))."""
        return rand() * min(self.max_delay, self.base_delay * (2 ** (retry - 1)))


def is_retryable(error: BaseException) -> bool:
    """True for a mapped error that another attempt may cure."""
    return isinstance(error, (DriveTransientError, DriveRateLimited))


class Pacer:
    """A token bucket shared by all threads of a client: at most ``rate`` requests per second
    on average, bursts up to ``burst``. ``rate=None`` turns pacing off."""

    def __init__(
        self,
        rate: float | None = DEFAULT_RATE,
        burst: float = DEFAULT_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive or None")
        self.rate = rate
        self.burst = max(1.0, float(burst))
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self, n: float = 1.0) -> float:
        """Take ``n`` tokens (a batch of n calls costs n), sleeping as needed; returns the wait."""
        if self.rate is None:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= n
            # Reserve now, sleep outside the lock: later callers queue behind this debt.
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


def drive_error(exc: BaseException, what: str = "") -> DriveError | None:
    """``exc`` as a typed :class:`DriveError`, or None when it is not Drive's."""
    error = map_exception(exc, what=what)
    return error if isinstance(error, DriveError) else None


class Retrier:
    """Runs a call with pacing and retries; raises typed errors.

    ``typed(exc, what)`` turns a failure into the store's typed error (None: not the store's,
    raised as it is) and ``retryable(error)`` says whether another try may cure it; by default
    Drive's. A bucket's client passes its own pair, so one retry loop serves both stores.
    """

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        pacer: Pacer | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        typed: Callable[[BaseException, str], Exception | None] = drive_error,
        retryable: Callable[[Exception], bool] = is_retryable,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._typed = typed
        self._retryable = retryable
        self.pacer = pacer or Pacer(None)
        self._sleep = sleep
        self._rand = rand
        self._lock = threading.Lock()
        self.retries = 0
        """Retries made by this retrier since it was made (all threads)."""

    def call(
        self,
        fn: Callable[[], T],
        *,
        what: str = "",
        cost: float = 1.0,
        on_retry: Callable[[DriveError, float], None] | None = None,
    ) -> T:
        """``fn()`` until it succeeds, fails for good, or the attempts run out.

        ``on_retry(error, delay)`` is told of each retry before its sleep. Errors that are not
        Drive's (local I/O, bugs) pass through untouched on the first occurrence.
        """
        attempt = 0
        while True:
            attempt += 1
            self.pacer.acquire(cost)
            try:
                return fn()
            except Exception as exc:  # classified: retried, or raised typed (foreign: as is)
                self.retry_or_raise(exc, attempt, what=what, on_retry=on_retry)

    def classify(self, exc: BaseException, what: str = "") -> Exception:
        """``exc`` as the store's typed error; anything not the store's (local I/O, a bug) is
        raised again as it is."""
        error = self._typed(exc, what)
        if error is None:
            raise exc
        return error

    def backoff(
        self,
        error: Exception,
        attempt: int,
        on_retry: Callable[[Any, float], None] | None = None,
    ) -> bool:
        """After try number ``attempt`` failed with ``error``: count the retry, tell
        ``on_retry(error, delay)``, sleep, and return True; or return False at once when
        another try cannot help (a final error, or the attempts used up).

        Every retrying loop of the client goes through here (and :meth:`classify`)."""
        delay = self.next_delay(error, attempt)
        if delay is None:
            return False
        self.note_retry(error, delay, on_retry)
        self._sleep(delay)
        return True

    def retry_or_raise(
        self,
        exc: Exception,
        attempt: int,
        *,
        what: str = "",
        on_retry: Callable[[Any, float], None] | None = None,
    ) -> None:
        """In an ``except`` block of a loop that drives its own tries: wait before the next
        (:meth:`backoff`), or raise ``exc`` as its typed error when another try cannot help."""
        error = self.classify(exc, what)
        if not self.backoff(error, attempt, on_retry):
            raise error from (None if error is exc else exc)

    def next_delay(self, error: Exception, attempt: int) -> float | None:
        """Seconds to wait before another try after ``attempt`` failed, or None to give up."""
        if not self._retryable(error) or attempt >= self.policy.max_attempts:
            return None
        delay = self.policy.backoff(attempt, self._rand)
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            if retry_after > self.policy.max_retry_after:
                return None
            delay = max(delay, retry_after)
        return delay

    def note_retry(
        self,
        error: Exception,
        delay: float,
        on_retry: Callable[[Any, float], None] | None,
    ) -> None:
        with self._lock:
            self.retries += 1
        if on_retry is not None:
            on_retry(error, delay)
