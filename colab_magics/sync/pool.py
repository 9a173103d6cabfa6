"""A bounded thread pool for per-file work that a kill can stop.

Unlike ``drive.pool.run_parallel`` (which collects every failure and goes on), an exception
that is not an ``Exception`` — ``KeyboardInterrupt``, ``SystemExit``, raised by a worker or by a
progress callback — stops the run: nothing new starts, running items finish, and it is
re-raised. ``fatal(exc)`` may also stop it for a failure every further item would share
(Drive full, disk full). Ordinary failures are handed to ``on_error`` and the rest go on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

T = TypeVar("T")


class Stopped(Exception):
    """Raised by :func:`run_each` when ``fatal`` said stop; ``cause`` is the failure."""

    def __init__(self, key: str, cause: BaseException) -> None:
        super().__init__(f"{key}: {cause}")
        self.key = key
        self.cause = cause


def run_each(
    items: Iterable[tuple[str, T]],
    fn: Callable[[T], Any],
    *,
    jobs: int,
    on_result: Callable[[str, Any], None],
    on_error: Callable[[str, BaseException], None],
    fatal: Callable[[BaseException], bool] = lambda exc: False,
    stop: threading.Event | None = None,
) -> None:
    """``fn(item)`` for each ``(key, item)`` on ``jobs`` threads, at most ``4 * jobs`` queued."""
    jobs = max(1, jobs)
    running: dict[Future[Any], str] = {}
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

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="sync") as pool:
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
