"""Many small transfers at once on a pool of worker threads.

Each worker uses its own authorized Http (the transport hands one out per thread), since
httplib2 connections are not thread-safe. A failure of one item never stops the others; every
error is collected, reported to the progress callback, and available to the caller, so no
failed upload is silently dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar

from colab_magics.drive.errors import DriveError
from colab_magics.drive.progress import NO_PROGRESS, Callback

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")

DEFAULT_WORKERS = 8


@dataclasses.dataclass
class PoolOutcome(Generic[K, R]):
    """Per-item results and errors of one parallel run."""

    results: dict[K, R] = dataclasses.field(default_factory=dict)
    errors: dict[K, BaseException] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_errors(self) -> None:
        """Raise a :class:`DriveError` naming how many items failed (the first as the cause)."""
        if not self.errors:
            return
        key, first = next(iter(self.errors.items()))
        raise DriveError(
            f"{len(self.errors)} of {len(self.errors) + len(self.results)} transfers failed; "
            f"first: {key}: {first}"
        ) from first


def run_parallel(
    items: Iterable[tuple[K, Any]],
    fn: Callable[[Any], R],
    *,
    workers: int = DEFAULT_WORKERS,
    progress: Callback = NO_PROGRESS,
    window: int | None = None,
) -> PoolOutcome[K, R]:
    """``fn(arg)`` for each ``(key, arg)`` on ``workers`` threads.

    At most ``window`` items (default ``4 * workers``) are queued at once, so a listing of
    100,000 files does not become 100,000 futures holding their arguments in memory.
    """
    outcome: PoolOutcome[K, R] = PoolOutcome()
    window = window or 4 * workers
    running: dict[Future[R], K] = {}

    def collect(done: set[Future[R]]) -> None:
        for fut in done:
            key = running.pop(fut)
            exc = fut.exception()
            if exc is None:
                outcome.results[key] = fut.result()
            else:
                outcome.errors[key] = exc
                progress.error(exc, str(key))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drive-xfer") as pool:
        for key, arg in items:
            if len(running) >= window:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                collect(done)
            running[pool.submit(fn, arg)] = key
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            collect(done)
    return outcome
