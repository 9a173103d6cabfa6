"""Pending mount writes: files written to the mount in this runtime that Drive does not hold.

Colab shows DriveFS's upload queue nowhere, so the only truth is asking the API: a file written
since the runtime started is pending while Drive has no file at its path, or one whose size or
md5 differs. :meth:`MountView.flush` waits for those (or pushes them through the API) without
unmounting.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence

from colab_magics.drive import DriveClient, DriveFile, TransferProgress
from colab_magics.drive.paths import COLAB_MOUNT, join
from colab_magics.guard.mountindex import DriveFolders
from colab_magics.progress import DONE, FAILED, NO_SINK, Sink
from colab_magics.runtime import runtime_started
from colab_magics.units import format_bytes, plural

_READ = 1 << 20


class Md5Cache:
    """Local md5s, computed on demand and valid while a file's ``(size, mtime_ns)`` holds
    (one entry per path: a checkpoint rewritten a thousand times is remembered once)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[int, int, str]] = {}
        self._lock = threading.Lock()

    def md5(self, path: str, st: os.stat_result) -> str:
        with self._lock:
            known = self._known.get(path)
        if known is not None and known[:2] == (st.st_size, st.st_mtime_ns):
            return known[2]
        digest = hashlib.md5()
        with open(path, "rb") as f:
            while chunk := f.read(_READ):
                digest.update(chunk)
        with self._lock:
            self._known[path] = (st.st_size, st.st_mtime_ns, digest.hexdigest())
        return digest.hexdigest()


def difference(path: str, st: os.stat_result, file: DriveFile | None, md5s: Md5Cache) -> str | None:
    """Why Drive's ``file`` is not the local file at ``path`` (None when they agree)."""
    if file is None:
        return "not on Drive"
    if file.is_folder:
        return "a folder on Drive"
    if file.size is not None and file.size != st.st_size:
        return f"size differs {st.st_size} vs {file.size}"
    # Sizes agree: only now is the (cached) local md5 worth reading the file for.
    if file.md5 is not None and md5s.md5(path, st) != file.md5:
        return "md5 differs"
    return None


@dataclasses.dataclass(frozen=True)
class PendingFile:
    """A file written to the mount that Drive does not hold yet (``size``: the local size)."""

    mount_path: str
    drive_path: str
    size: int
    why: str

    def __str__(self) -> str:
        return f"{self.mount_path} ({format_bytes(self.size)}, {self.why})"


def describe(pending: Sequence[PendingFile], *, limit: int = 20) -> str:
    """A few lines for ``%drive_status``: how much is pending, then one line per file."""
    if not pending:
        return "Nothing pending: Drive holds every file written to the mount in this runtime."
    total = format_bytes(sum(p.size for p in pending))
    lines = [
        f"{plural(len(pending), 'file')} ({total}) written to the mount "
        "in this runtime not on Drive yet (lost if the runtime ends now; `%drive_flush` waits "
        "for them, `--push` uploads them through the API):"
    ]
    lines += [f"  {p}" for p in pending[:limit]]
    if len(pending) > limit:
        lines.append(f"  ... and {len(pending) - limit} more")
    return "\n".join(lines)


@dataclasses.dataclass
class FlushReport:
    """What a flush waited for (``files``, as pending at the start) and how it went."""

    files: list[PendingFile]
    pushed: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    polls: int = 0

    @property
    def bytes(self) -> int:
        return sum(p.size for p in self.files)

    def __str__(self) -> str:
        if not self.files:
            return "Nothing pending: Drive holds every file written to the mount."
        how = f"pushed {len(self.pushed)} through the API" if self.pushed else "synced by the mount"
        return (
            f"{plural(len(self.files), 'file')} ({format_bytes(self.bytes)}) "
            f"{'is' if len(self.files) == 1 else 'are'} on Drive, {how}, "
            f"in {self.seconds:.1f} s."
        )


class FlushTimeout(TimeoutError):
    """The mount did not upload everything in time; ``pending`` is what is still missing."""

    def __init__(self, pending: Sequence[PendingFile], timeout: float) -> None:
        self.pending = list(pending)
        shown = "; ".join(str(p) for p in self.pending[:5])
        more = f" and {len(self.pending) - 5} more" if len(self.pending) > 5 else ""
        total = format_bytes(sum(p.size for p in self.pending))
        super().__init__(
            f"After {timeout:g} s the mount has still not uploaded "
            f"{plural(len(self.pending), 'file')} "
            f"({total}): {shown}{more}. They are lost if the runtime ends now. Push them "
            "through the API instead: `%drive_flush --push`."
        )


class MountView:
    """The mount at ``mount_root`` compared with Drive through ``client``.

    ``since`` is the cutoff for "written in this runtime" (``time.time()`` seconds; default:
    :func:`~colab_magics.runtime.runtime_started`). ``folders`` may be shared with a
    :class:`~colab_magics.guard.Guard`.
    """

    def __init__(
        self,
        client: DriveClient,
        mount_root: str | os.PathLike[str] | None = None,
        *,
        since: float | None = None,
        folders: DriveFolders | None = None,
        md5s: Md5Cache | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        root = mount_root or client.mount_root or COLAB_MOUNT
        self.mount_root = os.path.abspath(os.fspath(root))
        self.since = runtime_started() if since is None else since
        self.folders = folders or DriveFolders(client)
        self.md5s = md5s or Md5Cache()
        self._clock = clock
        self._sleep = sleep

    def drive_path(self, mount_path: str | os.PathLike[str]) -> str:
        """The Drive path (relative to My Drive) that a mount path mirrors."""
        path = os.path.abspath(os.fspath(mount_path))
        if path != self.mount_root and not path.startswith(self.mount_root + os.sep):
            raise ValueError(f"{path!r} is not under the mount {self.mount_root!r}")
        return join(self.client.parse(path.replace(self.mount_root, "drive:", 1)))

    def pending(self, paths: Iterable[str | os.PathLike[str]] | None = None) -> list[PendingFile]:
        """Files under the mount (or under ``paths``) written in this runtime that Drive does
        not hold with the same size and md5. Costs one changes call plus one listing per folder
        not seen before."""
        roots = [self.mount_root] if paths is None else [os.fspath(p) for p in paths]
        for root in roots:
            self.drive_path(root)  # a path outside the mount is a mistake: say so now
            if not os.path.lexists(root):
                raise FileNotFoundError(f"No such file or folder on the mount: {root!r}")
        return self._pending(roots)

    def _pending(self, roots: Sequence[str]) -> list[PendingFile]:
        by_folder: dict[str, list[tuple[str, os.stat_result]]] = {}
        for path, st in self._recent(roots):
            by_folder.setdefault(os.path.dirname(path), []).append((path, st))
        if not by_folder:
            return []
        self.folders.refresh(force=True)
        out: list[PendingFile] = []
        for folder, files in sorted(by_folder.items()):
            drive_folder = self.folders.lookup(self.client.parse(self.drive_path(folder)))
            children = (
                self.folders.children(drive_folder.id)
                if drive_folder is not None and drive_folder.is_folder
                else {}
            )
            for path, st in sorted(files, key=lambda item: item[0]):
                try:
                    why = difference(path, st, children.get(os.path.basename(path)), self.md5s)
                except FileNotFoundError:
                    continue  # deleted while we looked: nothing left to lose
                if why is not None:
                    out.append(PendingFile(path, self.drive_path(path), st.st_size, why))
        return out

    def _recent(self, roots: Sequence[str]) -> Iterable[tuple[str, os.stat_result]]:
        """``(path, stat)`` of regular files under ``roots`` modified after :attr:`since`."""
        cutoff = int(self.since * 1e9)
        seen: set[str] = set()
        for root in roots:
            root = os.path.abspath(root)
            if os.path.isfile(root):
                walked: Iterable[tuple[str, list[str], list[str]]] = [
                    (os.path.dirname(root), [], [os.path.basename(root)])
                ]
            else:
                walked = os.walk(root)
            for top, _, names in walked:
                for name in names:
                    path = os.path.join(top, name)
                    if path in seen:
                        continue
                    seen.add(path)
                    try:
                        st = os.stat(path)
                    except FileNotFoundError:
                        continue
                    if st.st_mtime_ns >= cutoff:
                        yield path, st

    def flush(
        self,
        paths: Iterable[str | os.PathLike[str]] | None = None,
        *,
        timeout: float = 600,
        push: bool = False,
        progress: Sink = NO_SINK,
        poll: float = 0.25,
        max_poll: float = 5.0,
    ) -> FlushReport:
        """Wait until Drive holds every file pending now (without unmounting).

        Polls with backoff (``poll`` doubling up to ``max_poll`` seconds); raises
        :class:`FlushTimeout` naming what is still pending after ``timeout`` seconds. With
        ``push`` the pending files are uploaded through the API instead (md5-verified), for
        when waiting is not an option. ``progress`` (``update(**fields)``) gets files and bytes
        pending/done. Files written after the flush started are left to the next one.
        """
        start = self._clock()
        report = FlushReport(self.pending(paths))
        report.polls = 1
        sink = progress
        sink.update(
            files_total=len(report.files), files_done=0, bytes_total=report.bytes,
            bytes_done=0, files_pending=len(report.files),
            message=f"{plural(len(report.files), 'file')} pending on the mount",
        )  # fmt: skip
        try:
            if push:
                self._push(report, progress)
            else:
                self._wait(report, sink, start, timeout, poll, max_poll)
        except BaseException as exc:
            sink.update(state=FAILED, error=str(exc))
            raise
        report.seconds = self._clock() - start
        sink.update(state=DONE, files_pending=0, message=str(report))
        return report

    def _wait(
        self, report: FlushReport, sink: Sink, start: float, timeout: float, poll: float,
        max_poll: float,
    ) -> None:  # fmt: skip
        targets = [p.mount_path for p in report.files]
        delay = poll
        left = report.files
        while left:
            remaining = timeout - (self._clock() - start)
            if remaining <= 0:
                raise FlushTimeout(left, timeout)
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, max_poll)
            left = self._pending([t for t in targets if os.path.lexists(t)])
            report.polls += 1
            left_bytes = sum(p.size for p in left)
            sink.update(
                files_pending=len(left), files_done=len(report.files) - len(left),
                bytes_done=report.bytes - left_bytes,
                message=f"waiting for the mount: {plural(len(left), 'file')} pending",
            )  # fmt: skip

    def _push(self, report: FlushReport, progress: Sink) -> None:
        transfer = TransferProgress(progress)
        transfer.set_files(len(report.files))
        for item in report.files:
            md5 = self.md5s.md5(item.mount_path, os.stat(item.mount_path))
            # replace=True: the mount's own upload, when it comes, finds the same bytes there.
            self.client.upload(
                item.mount_path, item.drive_path, replace=True, md5=md5, progress=transfer
            )
            report.pushed.append(item.drive_path)
