"""The consistency guard: the mount's view of the paths a cell uses, checked against Drive's.

For each mount path (named by the cell, or watched) the guard compares what the mount lists
with what Drive holds, and reports a missing path, a partial listing, files still pending
upload, a folder over the risk threshold, and a nearly full Drive. Findings that make a cell
read the wrong data (``missing``, ``partial``, ``unreadable``) stop it with :class:`GuardError`
unless ``warn`` is set; the rest are printed. :func:`install` runs the check as the first
statement of every cell that names a mount path (see :mod:`colab_magics.guard.cell`).
"""

from __future__ import annotations

import dataclasses
import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Sequence

import colab_magics.guard.findings as findings
from colab_magics.drive import DriveClient, DriveError, DriveFile, Quota
from colab_magics.drive.paths import COLAB_MOUNT
from colab_magics.guard.findings import Finding, GuardError
from colab_magics.guard.mountindex import DriveFolders, comparable
from colab_magics.guard.mountview import (
    Md5Cache,
    MountView,
    PendingFile,
    difference,
    runtime_started,
)
from colab_magics.guard.paths import paths_in_source
from colab_magics.settings import get

_ONCE = frozenset({"large", "quota"})


@dataclasses.dataclass
class _CellChecks:
    """What the guard did in one cell: paths checked, the watched ones, a failure told."""

    cell: int | None
    paths: set[str] = dataclasses.field(default_factory=set)
    watched: bool = False
    told: bool = False


class Guard:
    """Checks mount paths against Drive through ``client``.

    ``client`` may be a function returning the client: it is called on the first check that
    has a path to look at, so a guard installed when the extension loads contacts Drive only
    once a cell names the mount. ``mount_root`` defaults to the client's, else Colab's.

    ``threshold``: folder size (entries) past which a ``large`` finding is reported.
    ``warn``: print stopping findings instead of raising. ``quota_ratio``: usage (trash
    included) at which a ``quota`` finding is reported. ``max_age``: how stale Drive's view may
    be for a passing check, in seconds (a failing check always looks again first).
    ``quota_every``: seconds between quota calls. ``rescan_every``: seconds a folder's
    pending-files scan is reused while nothing about it changed. ``since``: see
    :class:`MountView`. ``threshold`` or ``quota_ratio`` left None follows its setting
    (``guard_folder_limit``, ``guard_quota_ratio``) as it is at each check.
    """

    def __init__(
        self,
        client: DriveClient | Callable[[], DriveClient],
        mount_root: str | os.PathLike[str] | None = None,
        *,
        threshold: int | None = None,
        warn: bool = False,
        quota_ratio: float | None = None,
        max_age: float = 1.0,
        quota_every: float = 60.0,
        rescan_every: float = 10.0,
        since: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_source = client
        if mount_root is None and isinstance(client, DriveClient):
            mount_root = client.mount_root
        self.mount_root = os.path.abspath(os.fspath(mount_root or COLAB_MOUNT))
        self.since = runtime_started() if since is None else since
        self.max_age = max_age
        self._view: MountView | None = None
        self._threshold = threshold
        self.warn = warn
        self._quota_ratio = quota_ratio
        self.quota_every = quota_every
        self.rescan_every = rescan_every
        self.enabled = True
        self.watched: dict[str, int] = {}
        """Watched mount paths and how many levels of subfolders to check under each."""
        self._clock = clock
        self._quota: tuple[float, Quota] | None = None
        self._children_memo: dict[str, tuple[int, dict[str, DriveFile]]] = {}
        self._scans: dict[str, tuple[tuple[int, int], float, list[PendingFile]]] = {}
        self._agreed: dict[str, tuple[int, int, DriveFile | None]] = {}
        self._unlisted: dict[str, tuple[dict[str, DriveFile], list[str], list[str]]] = {}
        self._told: set[str] = set()
        self._seen: set[str] = set()  # named paths the mount has shown in an earlier check
        self._cell: _CellChecks | None = None

    @property
    def view(self) -> MountView:
        """The mount view the checks use (the client is made here, on first use)."""
        if self._view is None:
            source = self._client_source
            client = source if isinstance(source, DriveClient) else source()
            folders = DriveFolders(client, max_age=self.max_age, clock=self._clock)
            self._view = MountView(
                client, self.mount_root, since=self.since, folders=folders, md5s=Md5Cache()
            )
        return self._view

    @property
    def threshold(self) -> int:
        return self._threshold if self._threshold is not None else get("guard_folder_limit")

    @property
    def quota_ratio(self) -> float:
        return self._quota_ratio if self._quota_ratio is not None else get("guard_quota_ratio")

    @property
    def client(self) -> DriveClient:
        return self.view.client

    @property
    def folders(self) -> DriveFolders:
        return self.view.folders

    # -- what to check ----------------------------------------------------------------------

    def watch(self, path: str | os.PathLike[str], *, depth: int = 0) -> str:
        """Check ``path`` (a mount path) before every cell; returns it normalized.

        ``depth`` also checks subfolders that many levels down (a dataset of class folders:
        1), at the cost of listing each of them on the mount at every cell.
        """
        norm = os.path.abspath(os.fspath(path))
        if norm != self.mount_root and not norm.startswith(self.mount_root + os.sep):
            # Refused now rather than failing at every cell.
            raise ValueError(f"{norm!r} is not under the mount {self.mount_root!r}")
        self.watched[norm] = depth
        return norm

    def unwatch(self, path: str | os.PathLike[str]) -> None:
        self.watched.pop(os.path.abspath(os.fspath(path)), None)

    def check_source(self, cell_source: str) -> list[Finding]:
        """Findings for the mount paths ``cell_source`` names, plus the watched ones."""
        return self.check_paths(paths_in_source(cell_source, self.mount_root))

    def check_paths(
        self, paths: Iterable[str | os.PathLike[str]], *, depth: int = 0, watched: bool = True
    ) -> list[Finding]:
        """Findings for ``paths`` (and subfolders ``depth`` levels down) and, unless
        ``watched`` is False, the watched paths; with neither, no Drive call at all."""
        todo = dict.fromkeys((os.path.abspath(os.fspath(p)) for p in paths), depth)
        for path, levels in self.watched.items() if watched else ():
            todo[path] = max(levels, todo.get(path, 0))
        if not todo:
            return []
        self.folders.refresh()
        findings = [f for path, levels in todo.items() for f in self._check(path, levels)]
        if any(f.stops for f in findings):
            # Before stopping a cell, make sure it is not our view of Drive that is behind.
            self.folders.refresh(force=True)
            findings = [f for path, levels in todo.items() for f in self._check(path, levels)]
        return findings + self._check_quota()

    def enforce(self, findings: Sequence[Finding]) -> None:
        """Raise :class:`GuardError` for stopping findings (unless ``warn``); print the rest."""
        __tracebackhide__ = True
        stopping = [f for f in findings if f.stops]
        if stopping and not self.warn:
            raise GuardError(stopping)
        for f in findings:
            if f.kind in _ONCE:
                if f.message in self._told:
                    continue  # advice that does not change is given once, not at every cell
                self._told.add(f.message)
            print(f"Drive guard: {f.message}", file=sys.stderr)

    def run(self, paths: Iterable[str], *, cell: int | None = None) -> None:
        """What a guarded cell runs first: check, then raise or warn.

        ``cell`` numbers the cell being run: within one cell (a cell magic's body after the
        cell itself) a path is checked once. When the check cannot be made (Drive offline,
        auth expired, no connection) the cell runs, and one line says so: the guard cannot
        vouch for the mount, but it must not be what breaks a cell.
        """
        __tracebackhide__ = True  # IPython shows the GuardError, not the guard's frames
        if not self.enabled:
            return
        named = list(dict.fromkeys(os.path.abspath(os.fspath(p)) for p in paths))
        done = self._cell_checks(cell)
        named = [p for p in named if p not in done.paths]
        watched = not done.watched
        try:
            if not named and not (watched and self.watched):
                return
            findings = self.check_paths(named, watched=watched)
        except Exception as exc:  # told in one line: the cell must still run
            findings = None
            self.cannot_check(exc, cell=cell)
        finally:
            done.paths.update(named)
            done.watched = done.watched or watched
        if findings is not None:
            self.enforce(findings)

    def cannot_check(self, exc: BaseException, *, cell: int | None = None) -> None:
        """Say, once per cell and in one line, that the cell runs unchecked, and why."""
        done = self._cell_checks(cell)
        if done.told:
            return
        done.told = True
        why = " ".join(str(exc).split())
        if not isinstance(exc, DriveError):
            why = f"{type(exc).__name__}: {why}" if why else type(exc).__name__
        print(
            f"Drive guard: could not check the mount against Drive ({why}); this cell runs "
            "unchecked.",
            file=sys.stderr,
        )

    def _cell_checks(self, cell: int | None) -> _CellChecks:
        """What was checked in cell ``cell``; a fresh record for each call without one."""
        if cell is None or self._cell is None or self._cell.cell != cell:
            self._cell = _CellChecks(cell)
        return self._cell

    # -- one path ---------------------------------------------------------------------------

    def _check(self, path: str, depth: int = 0) -> list[Finding]:
        drive_path = self.view.drive_path(path)
        drive = self.folders.lookup(self.client.parse(drive_path))
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError as exc:  # Errno 5 and friends: the mount gave up on it
            return [findings.unreadable(path, drive_path, exc, self._folder_children(drive))]
        if st is None:
            if drive is None:
                return []
            if path in self._seen:
                return [findings.deleted(path)]
            return [findings.missing(path, drive_path, drive, self._folder_children(drive))]
        self._seen.add(path)
        if stat.S_ISDIR(st.st_mode):
            if drive is not None and not drive.is_folder:
                return []
            return self._check_folder(path, drive_path, drive, st, depth)
        if st.st_mtime_ns < self.since * 1e9:
            return []
        why = difference(path, st, drive, self.view.md5s)
        if why is None:
            return []
        return [findings.pending(path, [PendingFile(path, drive_path, st.st_size, why)])]

    def _check_folder(
        self, path: str, drive_path: str, drive: DriveFile | None, st: os.stat_result, depth: int
    ) -> list[Finding]:
        children = self._comparable(drive)
        try:
            # Listed on every check, never cached: a mount listing fails from one call to the
            # next, and catching that is the point.
            names = os.listdir(path)
        except OSError as exc:
            return [findings.unreadable(path, drive_path, exc, self._folder_children(drive))]
        out: list[Finding] = []
        missing = self._not_listed(path, names, children)
        if missing:
            out.append(
                findings.partial(path, drive_path, len(names), children, missing, self.threshold)
            )
        pending = self._pending_in(path, drive_path, drive, st, children)
        if pending:
            out.append(findings.pending(path, pending))
        if len(children) > self.threshold:
            out.append(findings.large(path, drive_path, len(names), children, self.threshold))
        if depth > 0:
            self.folders.prefetch(c.id for c in children.values() if c.is_folder)
            for name, child in sorted(children.items()):
                sub = os.path.join(path, name)
                if child.is_folder and os.path.isdir(sub):
                    out += self._check(sub, depth - 1)
        return out

    def _not_listed(self, path: str, names: list[str], children: dict[str, DriveFile]) -> list[str]:
        """Drive's names in ``children`` that ``names`` (the mount's listing) lacks.

        The answer is kept with the listing it came from: when the next listing is the same
        list and Drive's side is the same dict, comparing the two lists (one C loop) stands in
        for hashing every name again. The listing itself is never reused.
        """
        memo = self._unlisted.get(path)
        if memo is not None and memo[0] is children and memo[1] == names:
            return memo[2]
        listed = set(names)
        missing = sorted(n for n in children if n not in listed)
        self._unlisted[path] = (children, names, missing)
        return missing

    def _comparable(self, drive: DriveFile | None) -> dict[str, DriveFile]:
        """Drive's children of ``drive`` that the mount shows under their own names."""
        if drive is None or not drive.is_folder:
            return {}
        version = self.folders.folder_version(drive.id)
        memo = self._children_memo.get(drive.id)
        if memo is None or memo[0] != version:
            children = {
                n: f
                for n, f in self.folders.children(drive.id).items()
                if comparable(f) and "/" not in n
            }
            memo = self._children_memo[drive.id] = (version, children)
        return memo[1]

    def _pending_in(
        self, path: str, drive_path: str, drive: DriveFile | None, st: os.stat_result,
        children: dict[str, DriveFile],
    ) -> list[PendingFile]:  # fmt: skip
        """Files in the folder written in this runtime that Drive does not hold.

        Stat-ing every file is most of a check's cost, so the answer is reused while the
        folder on Drive and the folder's own mtime (files added or removed) are unchanged, for
        up to ``rescan_every`` seconds (a file rewritten in place shows within that).
        """
        version = self.folders.folder_version(drive.id) if drive is not None else -1
        state = (version, st.st_mtime_ns)
        now = self._clock()
        memo = self._scans.get(path)
        if memo is not None and memo[0] == state and now - memo[1] < self.rescan_every:
            return memo[2]
        cutoff = self.since * 1e9
        pending: list[PendingFile] = []
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            return []  # the listing check above has reported it
        for entry in entries:
            try:
                if not entry.is_file():
                    continue
                est = entry.stat()
                if est.st_mtime_ns < cutoff:
                    continue
                child = children.get(entry.name)
                seen = (est.st_size, est.st_mtime_ns, child)
                if self._agreed.get(entry.path) == seen:
                    continue  # unchanged on both sides since they last agreed
                why = difference(entry.path, est, child, self.view.md5s)
            except FileNotFoundError:
                continue
            if why is None:
                self._agreed[entry.path] = seen
            else:
                rel = f"{drive_path}/{entry.name}" if drive_path else entry.name
                pending.append(PendingFile(entry.path, rel, est.st_size, why))
        self._scans[path] = (state, now, pending)
        return pending

    def _check_quota(self) -> list[Finding]:
        now = self._clock()
        if self._quota is None or now - self._quota[0] >= self.quota_every:
            self._quota = (now, self.client.quota())
        q = self._quota[1]
        if not q.limit or q.usage < self.quota_ratio * q.limit:
            return []
        return [findings.quota(q)]

    def _folder_children(self, drive: DriveFile | None) -> dict[str, DriveFile] | None:
        return self.folders.children(drive.id) if drive is not None and drive.is_folder else None
