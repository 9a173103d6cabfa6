"""``Watcher``: push new and changed files of a local folder to Drive until stopped.

The first round is a full :func:`push` (so what Drive already has is not sent again); after
that each round compares a scan of the folder (size, mtime) with what was last pushed and
uploads the difference. A file that changes while it is read is pushed again next round. A
failure is reported to the progress sink and retried next round; the watcher keeps going.
Local deletions are not propagated (use ``push(..., delete=True)``).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from colab_magics.drive import DriveClient
from colab_magics.drive.paths import join
from colab_magics.drive.pool import run_each
from colab_magics.progress import NO_SINK, Sink
from colab_magics.sync.errors import SyncAborted, SyncError
from colab_magics.sync.local import LocalFile, Md5Cache, restat, scan
from colab_magics.sync.push_plan import push_tree
from colab_magics.sync.remote import drive_parts
from colab_magics.sync.report import SyncReport


class Watcher:
    """Background pushes of ``local`` (a folder) to ``drive_path`` every ``interval`` seconds.

    ``progress`` (anything with ``update(**fields)``) gets ``phase``, ``pending``, ``pushed``,
    ``errors`` and ``error``. ``report`` accumulates what every round did.
    """

    def __init__(
        self,
        local: str | os.PathLike[str],
        drive_path: str | os.PathLike[str],
        *,
        client: DriveClient,
        interval: float = 2.0,
        progress: Sink = NO_SINK,
        jobs: int = 4,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.local = os.fspath(local)
        if os.path.exists(self.local) and not os.path.isdir(self.local):
            raise SyncError(f"watch needs a local folder; {self.local!r} is a file.")
        os.makedirs(self.local, exist_ok=True)  # a folder the training will write into
        self.client = client
        self.parts = drive_parts(client, drive_path)
        self.interval = interval
        self.progress = progress
        self.jobs = jobs
        self.cache_dir = cache_dir
        self.report = SyncReport()
        self._pushed: dict[str, tuple[int, int]] = {}
        self._initial_done = False
        self._round_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- control ------------------------------------------------------------------------------

    def start(self) -> Watcher:
        if self._thread is not None:
            raise RuntimeError("this Watcher is already running")
        # Reported here, in the caller's thread: a display made next draws at once, under the
        # cell that started the watch, not later under whichever cell runs then.
        self._update(phase="starting", message="pushing what Drive does not hold yet")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="sync-watch", daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, flush: bool = True) -> SyncReport:
        """Stop the rounds; with ``flush`` push what is still pending first (in this thread).

        Raises :class:`SyncAborted` (with the report) when the flush could not push every file.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if flush:
            errors = self.run_once()
            if errors:
                key, msg = next(iter(errors.items()))
                raise SyncAborted(
                    f"Watch of {self.local!r} stopped with {len(errors)} file(s) not on Drive "
                    f"(first: {key}: {msg}). Push again: `push({self.local!r}, "
                    f"'drive:{join(self.parts)}')`.",
                    self.report,
                )
        self._update(
            phase="stopped", state="done" if self.report.ok else "failed", message="stopped"
        )
        return self.report

    def pending(self) -> list[str]:
        """Files (relative paths) new or changed since they were last pushed."""
        return sorted(self._changed(scan(self.local).files))

    # -- rounds -------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # keep watching; the sink shows why this round failed
                self._update(error=f"{type(exc).__name__}: {exc}")
            self._stop.wait(self.interval)

    def run_once(self) -> dict[str, str]:
        """One round: push what changed. Returns this round's per-file errors."""
        with self._round_lock:
            if not self._initial_done:
                return self._initial()
            files = scan(self.local).files
            changed = self._changed(files)
            self._update(phase="watching", pending=len(changed), message="watching for changes")
            return self._upload({rel: files[rel] for rel in changed}) if changed else {}

    def _initial(self) -> dict[str, str]:
        tree = scan(self.local)
        report = push_tree(
            tree,
            self.parts,
            client=self.client,
            delete=False,
            jobs=self.jobs,
            dry_run=False,
            progress=NO_SINK,
            cache_dir=self.cache_dir,
            action=f"Watch of {self.local!r}",
        )
        for rel, f in tree.files.items():
            if rel not in report.errors:
                self._pushed[rel] = (f.size, f.mtime_ns)
        self._initial_done = True
        self.report.uploaded += report.uploaded
        self.report.skipped += report.skipped
        self.report.bytes += report.bytes
        self._record_errors(report.errors)
        return dict(report.errors)

    def _changed(self, files: dict[str, LocalFile]) -> list[str]:
        return [rel for rel, f in files.items() if self._pushed.get(rel) != (f.size, f.mtime_ns)]

    def _upload(self, files: dict[str, LocalFile]) -> dict[str, str]:
        cache = Md5Cache(self.local, self.cache_dir)
        errors: dict[str, str] = {}
        lock = threading.Lock()

        def one(item: tuple[str, LocalFile]) -> tuple[str, LocalFile]:
            rel, f = item
            result = self.client.upload(f.path, join((*self.parts, *rel.split("/"))))
            if restat(f) == f:
                cache.put(rel, f, result.file.md5 or "")
            return item

        def done(_: str, item: tuple[str, LocalFile]) -> None:
            rel, f = item
            with lock:
                self._pushed[rel] = (f.size, f.mtime_ns)
                self.report.uploaded += 1
                self.report.bytes += f.size

        def failed(key: str, exc: BaseException) -> None:
            with lock:
                errors[key] = str(exc)

        try:
            run_each(
                ((rel, (rel, f)) for rel, f in sorted(files.items())),
                one,
                jobs=self.jobs,
                on_result=done,
                on_error=failed,
            )
        finally:
            cache.save()
        self._record_errors(errors)
        return errors

    def _record_errors(self, errors: dict[str, str]) -> None:
        for rel in self._pushed:
            self.report.errors.pop(rel, None)
        self.report.errors.update(errors)
        fields: dict[str, Any] = {
            "pushed": self.report.uploaded,
            "errors": len(self.report.errors),
            "last_round": time.time(),
        }
        if errors:
            key, msg = next(iter(errors.items()))
            fields["error"] = f"{len(errors)} file(s) not pushed; first: {key}: {msg}"
        self._update(**fields)

    def _update(self, **fields: Any) -> None:
        self.progress.update(**fields)
