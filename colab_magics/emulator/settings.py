"""Run-time settings of one emulator: quota, listing lag and injected faults.

One mutable object per server, read on every request by the app and the fault layer
and changed at run time through the ``/_emulator/`` control endpoint.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any


@dataclasses.dataclass
class EmulatorSettings:
    """Everything about a server's behaviour that a test may change while it runs.

    Probabilities are per HTTP request, between 0 and 1.
    """

    quota_bytes: int | None = None
    """Storage limit in bytes; ``None`` means unlimited."""
    listing_lag: float = 0.0
    """Seconds before a new or renamed file shows in ``files.list`` (Drive's index lag)."""
    latency: float = 0.0
    """Seconds added before every response."""
    jitter: float = 0.0
    """Up to this many more seconds, uniformly random, added before every response."""
    error_rate: float = 0.0
    """Probability of answering 500 or 503 ``backendError``."""
    rate_limit_429: float = 0.0
    """Probability of answering 429 ``rateLimitExceeded`` with ``Retry-After``."""
    retry_after: float = 1.0
    """Seconds sent in the ``Retry-After`` header of injected 429s."""
    rate_limit_403: float = 0.0
    """Probability of answering 403 ``userRateLimitExceeded``."""
    cut_rate: float = 0.0
    """Probability of cutting the connection half way through a request or response body."""
    error_after_rate: float = 0.0
    """Probability of doing what the request asks, then answering 500 or 503 all the same
    (a create that exists although the client saw an error; a chunk stored, answer lost)."""
    short_page_rate: float = 0.0
    """Probability that a ``files.list`` page holds fewer than ``pageSize`` files (even none)
    while a ``nextPageToken`` says more follow, as Drive's pages may."""
    md5_only: bool = False
    """New content keeps only ``md5Checksum``, like files Drive stored before it added
    ``sha1Checksum`` and ``sha256Checksum`` (files resource: "if available")."""
    seed: int | None = None
    """Seed for the fault dice, for reproducible runs."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (field name -> value); unknown names raise ``KeyError``."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise KeyError(f"unknown emulator setting(s): {', '.join(sorted(unknown))}")
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def faults_off(self) -> None:
        """Turn every injected fault off (quota and listing lag are left as they are)."""
        self.update(
            {
                "latency": 0.0,
                "jitter": 0.0,
                "error_rate": 0.0,
                "rate_limit_429": 0.0,
                "rate_limit_403": 0.0,
                "cut_rate": 0.0,
                "error_after_rate": 0.0,
                "short_page_rate": 0.0,
            }
        )
