"""Progress for one sync run, as fields of a sink (normally ``colab_magics.progress.Progress``):
byte/file counts, rate and ETA through ``TransferProgress``, the phase (also as ``message``,
which the ui shows), the outcome and the report's summary."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from colab_magics.drive import DriveClient
from colab_magics.drive.pool import Stopped
from colab_magics.progress import DONE, FAILED, NO_SINK, Callback, Sink, TransferProgress
from colab_magics.sync.errors import SyncAborted, fatal_message
from colab_magics.sync.report import SyncReport


class Feedback:
    """What a run tells its progress sink (by default :data:`NO_SINK`, which keeps nothing)."""

    def __init__(self, sink: Sink = NO_SINK) -> None:
        self.sink = sink
        self.transfer: Callback = TransferProgress(self.sink)

    def phase(self, name: str, **fields: Any) -> None:
        self.sink.update(phase=name, message=name, **fields)

    def file_error(self, key: str, exc: BaseException) -> None:
        self.transfer.error(exc, key)

    def finish(self, report: SyncReport) -> None:
        fields: dict[str, Any] = {"state": DONE if report.ok else FAILED}
        if not report.ok:
            key, msg = next(iter(report.errors.items()))
            fields["error"] = f"{len(report.errors)} failed; first: {key}: {msg}"
        summary = report.summary()
        self.sink.update(phase="done", summary=summary, message=summary, **fields)

    def fail(self, message: str) -> None:
        self.sink.update(state=FAILED, error=message)


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
