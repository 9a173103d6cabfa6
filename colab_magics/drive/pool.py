"""Many small transfers at once on a bounded pool of worker threads.

Each worker uses its own authorized Http (the transport hands one out per thread), since
httplib2 connections are not thread-safe. At most ``4 * jobs`` items are queued at once, so a
listing of 100,000 files does not become 100,000 futures holding their arguments in memory.

:func:`run_each` is the one loop: an ordinary failure of one item is handed to ``on_error``
and the rest go on; an exception that is not an ``Exception`` (``KeyboardInterrupt``,
``SystemExit``, raised by a worker or a progress callback) stops the run — nothing new starts,
running items finish — and is re-raised; ``fatal(exc)`` may also stop it for a failure every
further item would share (Drive full, disk full). :func:`run_parallel` collects results and
errors per item on top of it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar

from colab_magics.drive.errors import DriveError
from colab_magics.progress import NO_PROGRESS, Callback

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
R = TypeVar("R")

DEFAULT_WORKERS = 8


class Stopped(Exception):
    """Raised by :func:`run_each` when ``fatal`` said stop; ``cause`` is the failure."""

    def __init__(self, key: Any, cause: BaseException) -> None:
        super().__init__(f"{key}: {cause}")
        self.key = key
        self.cause = cause


def run_each(
    items: Iterable[tuple[Any, T]],
    fn: Callable[[T], Any],
    *,
    jobs: int,
    on_result: Callable[[Any, Any], None],
    on_error: Callable[[Any, BaseException], None],
    fatal: Callable[[BaseException], bool] = lambda exc: False,
    stop: threading.Event | None = None,
) -> None:
    """``fn(item)`` for each ``(key, item)`` on ``jobs`` threads, at most ``4 * jobs`` queued."""
    jobs = max(1, jobs)
    running: dict[Future[Any], Any] = {}
    abort: BaseException | None = None
    stop = stop or threading.Event()

    def collect(done: set[Future[Any]]) -> None:
        nonlocal abort
        for fut in done:
            key = running.pop(fut)
            if fut.cancelled():
                continue
            exc = fut.exception()
            if exc is None:
                on_result(key, fut.result())
            elif not isinstance(exc, Exception):
                abort = abort or exc
            elif fatal(exc):
                abort = abort or Stopped(key, exc)
            else:
                on_error(key, exc)

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="drive-xfer") as pool:
        try:
            for key, item in items:
                while len(running) >= 4 * jobs and abort is None:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    collect(done)
                if abort is not None or stop.is_set():
                    break
                running[pool.submit(fn, item)] = key
            while running:
                if abort is not None:  # queued items never start; running ones finish
                    for fut in running:
                        fut.cancel()
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                collect(done)
        except BaseException:
            # A kill in this thread: let the running items end, start nothing new.
            for fut in running:
                fut.cancel()
            raise
    if abort is not None:
        raise abort


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
) -> PoolOutcome[K, R]:
    """``fn(arg)`` for each ``(key, arg)`` on ``workers`` threads; every failure is collected."""
    outcome: PoolOutcome[K, R] = PoolOutcome()

    def failed(key: K, exc: BaseException) -> None:
        outcome.errors[key] = exc
        progress.error(exc, str(key))

    run_each(items, fn, jobs=workers, on_result=outcome.results.__setitem__, on_error=failed)
    return outcome
