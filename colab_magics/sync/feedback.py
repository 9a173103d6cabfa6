"""Progress for one sync run, as fields of any object with ``update(**fields)`` (normally
``colab_magics.progress.Progress``): byte/file counts and rate through ``TransferProgress``
plus an ``eta``, the phase (also as ``message``, which the ui shows), the outcome and the
report's summary."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from colab_magics.drive import NO_PROGRESS, Callback, DriveClient, TransferProgress
from colab_magics.drive.pool import Stopped
from colab_magics.sync.errors import SyncAborted, fatal_message
from colab_magics.sync.report import SyncReport


class _WithEta:
    """Adds ``eta`` (seconds) to the counts ``TransferProgress`` forwards."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink

    def update(self, **fields: Any) -> None:
        rate, left = fields.get("rate"), fields.get("bytes_total", 0) - fields.get("bytes_done", 0)
        fields["eta"] = left / rate if rate and left > 0 else None
        self.sink.update(**fields)


class Feedback:
    """What a run tells its progress sink (nothing at all when the sink is None)."""

    def __init__(self, sink: Any = None) -> None:
        self.sink = sink
        self.transfer: Callback = (
            TransferProgress(_WithEta(sink)) if sink is not None else NO_PROGRESS
        )

    def phase(self, name: str, **fields: Any) -> None:
        if self.sink is not None:
            self.sink.update(phase=name, message=name, **fields)

    def file_error(self, key: str, exc: BaseException) -> None:
        self.transfer.error(exc, key)

    def finish(self, report: SyncReport) -> None:
        if self.sink is None:
            return
        fields: dict[str, Any] = {"state": "done" if report.ok else "failed"}
        if not report.ok:
            key, msg = next(iter(report.errors.items()))
            fields["error"] = f"{len(report.errors)} failed; first: {key}: {msg}"
        summary = report.summary()
        self.sink.update(phase="done", summary=summary, message=summary, **fields)

    def fail(self, message: str) -> None:
        if self.sink is not None:
            self.sink.update(state="failed", error=message)


@contextlib.contextmanager
def run(
    report: SyncReport,
    feedback: Feedback,
    client: DriveClient | None,
    *,
    action: str,
    where: str | os.PathLike[str],
) -> Iterator[None]:
    """Time and count API calls of the run into ``report``; turn a failure that stops the
    whole run (Drive full or unreachable, disk full) into :class:`SyncAborted` with the fix."""
    start = time.monotonic()
    calls = client.requests if client is not None else 0
    try:
        yield
    except Stopped as stopped:
        report.errors.setdefault(stopped.key, str(stopped.cause))
        message = fatal_message(stopped.cause, action=action, where=os.fspath(where), client=client)
        feedback.fail(message or str(stopped.cause))
        raise SyncAborted(message or str(stopped.cause), report) from stopped.cause
    except Exception as exc:
        message = fatal_message(exc, action=action, where=os.fspath(where), client=client)
        feedback.fail(message or str(exc))
        if message is None:
            raise
        raise SyncAborted(message, report) from exc
    except BaseException:
        feedback.fail("interrupted; run it again to continue")
        raise
    finally:
        report.seconds = time.monotonic() - start
        if client is not None:
            report.api_calls = client.requests - calls
    feedback.finish(report)
