"""Safe, resumable extraction of .zip and .tar(.gz/.tgz/.bz2/.xz) archives into a local folder.

What is refused follows Python 3.12's ``tarfile`` ``data`` filter, for zip as well: an absolute
name, an entry or a symlink/hard link whose real destination leaves the target, a device, FIFO
or socket; setuid/setgid bits and group/other write are dropped (a file is 0o755 when its owner
could run it, else 0o644). Destinations are decided on the real filesystem, links already there
and those of this archive included (:mod:`colab_magics.sync.safe_fs`), and no planted link is
ever followed. A link target is read with a cap (it is a path: at most ``LINK_MAX`` bytes). An
archive whose files add up to more than ``max_size`` (by default ``RATIO`` times the archive's
own size, the mark of a zip bomb) or more than the free disk space is refused too. A refused
archive leaves nothing of this run behind. What the archive alone decides (names, kinds, link
targets, sizes) is checked for a whole zip before its first entry is written, for a tar (read
as a stream, so a 45 GB .tar.gz is decompressed once) entry by entry; what depends on the disk
is decided as each entry is placed, and links once more after the last one.

A re-run skips entries already there with the right size (and CRC for zip, mtime for tar,
which extraction sets), so an extraction cut short continues where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, BinaryIO

from colab_magics.drive import NO_PROGRESS, Callback
from colab_magics.sync.errors import ArchiveError, ArchiveRefused, SyncAborted, is_disk_full
from colab_magics.sync.local import ensure_space
from colab_magics.sync.report import SyncReport
from colab_magics.sync.safe_fs import SUPPORTED, Escape, Spot, Tree, split
from colab_magics.units import format_bytes

COPY_BLOCK = 1024 * 1024
RATIO = 200
"""Default limit on (bytes extracted) / (bytes of the archive): datasets compress far less."""
RATIO_FLOOR = 1024 * 1024
"""A tiny archive may always expand to this much (a few KB of text can compress 300x)."""
LINK_MAX = 4096
"""The longest link target read from an archive (Linux's PATH_MAX)."""
KINDS = {
    ".zip": "zip",
    ".tar": "tar",
    ".tar.gz": "tar",
    ".tgz": "tar",
    ".tar.bz2": "tar",
    ".tar.xz": "tar",
}
CORRUPT = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, ValueError)


@dataclasses.dataclass(frozen=True)
class Placed:
    """One entry as it is on disk after extraction: ``rel`` is its real path under the target;
    ``kind`` "file" (with ``size``, ``mtime_ns``), "link" (with ``target``) or "dir"."""

    rel: str
    kind: str
    size: int = 0
    mtime_ns: int = 0
    target: str = ""


def archive_kind(name: str) -> str | None:
    """``"zip"``, ``"tar"``, or None for a name with another ending."""
    lower = name.lower()
    for suffix in sorted(KINDS, key=len, reverse=True):
        if lower.endswith(suffix):
            return KINDS[suffix]
    return None


def extract(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    progress: Callback = NO_PROGRESS,
    report: SyncReport | None = None,
    name: str | None = None,
    max_size: int | None = None,
) -> SyncReport:
    """Extract ``archive`` into the folder ``dest`` (created if needed); see the module doc.

    ``name`` is how to call the archive in messages (its Drive name). ``max_size`` is the most
    bytes its files may add up to; by default ``RATIO`` times the archive's size (at least
    ``RATIO_FLOOR``). Raises :class:`ArchiveRefused` for an unsafe archive, ``ArchiveError``
    for a damaged one, ``SyncAborted`` when it does not fit on the disk.
    """
    return extract_placed(
        archive, dest, progress=progress, report=report, name=name, max_size=max_size
    )[0]


def extract_placed(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    progress: Callback = NO_PROGRESS,
    report: SyncReport | None = None,
    name: str | None = None,
    max_size: int | None = None,
) -> tuple[SyncReport, list[Placed]]:
    """:func:`extract`, also returning every entry as it now is on disk."""
    path = os.fspath(archive)
    label = name or os.path.basename(path)
    kind = archive_kind(label)
    if kind is None:
        raise ArchiveError(
            f"{label!r} is not an archive sync can extract: use .zip, .tar, .tar.gz or .tgz."
        )
    if max_size is not None and (isinstance(max_size, bool) or max_size < 0):
        raise ArchiveError(f"max_size must be a number of bytes (0 or more), not {max_size!r}")
    if not SUPPORTED:
        raise ArchiveError(
            "Extracting safely needs files opened relative to a folder (Linux, macOS); this "
            "system cannot, so extract the archive with a tool of its own."
        )
    report = report if report is not None else SyncReport()
    tree = Tree(os.fspath(dest))
    run = _Run(tree, label, os.path.getsize(path), max_size, progress, report)
    try:
        tree.remove_stale_staging()
        try:
            (_extract_zip if kind == "zip" else _extract_tar)(path, run)
            escaping = tree.escaping_link()
            if escaping is not None:
                raise run.refuse(*escaping)
        except (ArchiveRefused, SyncAborted):
            tree.undo()
            raise
        except BaseException:
            if tree.escaping_link() is not None:  # cut short right after such a link
                tree.undo()
            raise
    except ArchiveError:
        raise
    except CORRUPT as exc:
        raise ArchiveError(
            f"{label!r} is damaged or not a valid {kind} archive ({type(exc).__name__}: {exc}). "
            "If it was just downloaded it matched Drive's md5, so the copy on Drive is "
            "damaged: create and upload the archive again."
        ) from exc
    except OSError as exc:
        if getattr(exc, "errno", None) is None:  # gzip's BadGzipFile and friends
            raise ArchiveError(
                f"{label!r} is damaged or not a valid {kind} archive: {exc}"
            ) from exc
        raise
    finally:
        tree.close()
    return report, list(run.placed.values())


class _Run:
    """One extraction: limits, counts, and placing entries through the :class:`Tree`."""

    def __init__(
        self,
        tree: Tree,
        label: str,
        archive_bytes: int,
        max_size: int | None,
        progress: Callback,
        report: SyncReport,
    ) -> None:
        self.tree = tree
        self.label = label
        self.archive_bytes = archive_bytes
        self.max_size = max_size
        self.limit = max_size if max_size is not None else max(RATIO * archive_bytes, RATIO_FLOOR)
        self.progress = progress
        self.report = report
        self.total = 0
        self.placed: dict[str, Placed] = {}

    def refuse(self, entry: str, why: str) -> ArchiveRefused:
        return ArchiveRefused(
            f"{self.label!r} was refused for safety. Refusing archive entry {entry!r}: {why}. "
            f"Nothing was written outside {self.tree.top!r}, and nothing this extraction wrote "
            "was kept; extract only archives you trust, or remove that entry from it."
        )

    def count(self, size: int, entry: str | None = None) -> None:
        """Add ``size`` bytes of files to the total; refuse it past the limit."""
        self.total += size
        if self.total <= self.limit:
            return
        ratio = self.total / max(self.archive_bytes, 1)
        by = f" by entry {entry!r}" if entry else ""
        if self.max_size is None:
            limit = f"{RATIO}x the archive's size, the mark of a zip bomb"
        else:
            limit = "max_size"
        raise ArchiveRefused(
            f"{self.label!r} was refused for safety: its files add up to "
            f"{'more than ' if entry else ''}{format_bytes(self.total)}{by}, {ratio:.0f}x "
            f"the archive's {format_bytes(self.archive_bytes)}, over the limit of "
            f"{format_bytes(self.limit)} ({limit}). Nothing of it was kept. If you trust it, "
            "raise the limit with max_size=BYTES (`--max-size` in %drive_sync)."
        )

    @contextlib.contextmanager
    def entry(self, entry: str) -> Iterator[None]:
        """Name ``entry`` in whatever stops it."""
        try:
            yield
        except Escape as exc:
            raise self.refuse(entry, str(exc)) from None
        except (FileExistsError, IsADirectoryError, NotADirectoryError) as exc:
            raise ArchiveError(
                f"Archive entry {entry!r} clashes with a file or folder of the same name "
                f"(earlier in the archive, or already in the target): {exc.strerror}: "
                f"{exc.filename!r}. Extract into an empty folder, or fix the archive."
            ) from exc
        except OSError as exc:
            if is_disk_full(exc) or exc.errno is None:
                raise
            raise ArchiveError(
                f"Archive entry {entry!r} of {self.label!r} could not be written: "
                f"{exc.strerror or exc}"
            ) from exc

    def parts(self, entry: str) -> list[str]:
        if entry.startswith(("/", "\\")) or (len(entry) > 1 and entry[1] == ":"):
            raise self.refuse(entry, "it has an absolute path")
        return split(entry)

    def _record(self, spot: Spot, kind: str, target: str = "") -> None:
        st = spot.lstat()
        if st is not None:
            self.placed[spot.rel] = Placed(spot.rel, kind, st.st_size, st.st_mtime_ns, target)

    def folder(self, entry: str) -> None:
        with self.entry(entry), self.tree.at(self.parts(entry), create=True, follow_last=True) as s:
            st = s.lstat()
            if st is None:
                self.tree.mkdir(s)
            elif not stat.S_ISDIR(st.st_mode):
                raise FileExistsError(17, "a file has its name", entry)
            if s.name is not None:
                self._record(s, "dir")

    def file(
        self,
        entry: str,
        size: int,
        opener: Callable[[], IO[bytes]],
        *,
        mode: int,
        mtime: float | None,
        is_done: Callable[[os.stat_result, Callable[[], BinaryIO]], bool],
    ) -> None:
        """Write one file entry unless ``is_done`` says the file there already is it."""
        with (
            self.entry(entry),
            self.tree.at(self.parts(entry), create=True, follow_last=False) as s,
        ):
            st = s.lstat()
            if s.name is None or (st is not None and stat.S_ISDIR(st.st_mode)):
                raise IsADirectoryError(21, "a folder has its name", entry)
            there = st is not None and stat.S_ISREG(st.st_mode)
            if there and is_done(st, lambda: self.tree.open_existing(s)):  # type: ignore[arg-type]
                self._record(s, "file")
                self.report.skipped += 1
                self.progress.file_done(entry)
                return
            part = self.progress.branched(entry)
            part.set_size(size)

            def fill(out: BinaryIO) -> None:
                written = 0
                with opener() as src:
                    while block := src.read(COPY_BLOCK):
                        written += len(block)
                        if written > size:  # more than declared (and counted): stop
                            raise self.refuse(entry, f"it holds more than its declared {size} B")
                        out.write(block)
                        part.relative_update(len(block))

            self.tree.write_file(s, fill, executable=bool(mode & 0o100), mtime=mtime)
            self._record(s, "file")
        self.report.extracted += 1
        self.report.bytes += size
        self.progress.file_done(entry)

    def symlink(self, entry: str, target: str) -> None:
        with self.entry(entry):
            if not target or "\0" in target:
                raise self.refuse(entry, "it is a link with an empty or invalid target")
            if target.startswith("/"):
                raise self.refuse(entry, f"it is a link to the absolute path {target!r}")
            with self.tree.at(self.parts(entry), create=True, follow_last=False) as s:
                if s.name is None:
                    raise IsADirectoryError(21, "the target folder has its name", entry)
                try:
                    self.tree.check_inside([*s.parts, *split(target)])
                except Escape as exc:
                    raise self.refuse(
                        entry, f"it is a link to {target!r}, which leads outside the target ({exc})"
                    ) from None
                st = s.lstat()
                if st is not None and stat.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(21, "a folder has its name", entry)
                same = st is not None and stat.S_ISLNK(st.st_mode)
                if same and os.readlink(s.name, dir_fd=s.fd) == target:
                    self.tree.links[(*s.parts, s.name)] = entry
                    self._record(s, "link", target)
                    self.report.skipped += 1
                    return
                self.tree.symlink(s, target, entry)
                self._record(s, "link", target)
        self.report.extracted += 1

    def hardlink(self, entry: str, source: str) -> None:
        """Another name for the file ``source`` (a path from the top, resolved on disk)."""
        with self.entry(entry), contextlib.ExitStack() as stack:
            if source.startswith("/"):
                raise self.refuse(entry, f"it is a hard link to the absolute path {source!r}")
            try:
                at = self.tree.at(split(source), create=False, follow_last=True)
                src = stack.enter_context(at)
            except Escape as exc:
                why = f"it is a hard link to {source!r}, which leads outside the target ({exc})"
                raise self.refuse(entry, why) from None
            except (FileNotFoundError, NotADirectoryError):
                src = None
            sst = src.lstat() if src is not None else None
            if sst is None or not stat.S_ISREG(sst.st_mode):
                raise self.refuse(entry, f"it is a hard link to {source!r}, which is no file")
            at = self.tree.at(self.parts(entry), create=True, follow_last=False)
            s = stack.enter_context(at)
            st = s.lstat()
            if s.name is None or (st is not None and stat.S_ISDIR(st.st_mode)):
                raise IsADirectoryError(21, "a folder has its name", entry)
            if st is not None and os.path.samestat(st, sst):
                self._record(s, "file")
                self.report.skipped += 1
                return
            self.tree.hardlink(s, src)  # type: ignore[arg-type]
            self._record(s, "file")
        self.report.extracted += 1


def _crc(f: BinaryIO) -> int:
    crc = 0
    with f:
        while block := f.read(COPY_BLOCK):
            crc = zlib.crc32(block, crc)
    return crc


def _zip_kind(run: _Run, info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symlink"
    if info.is_dir() or stat.S_ISDIR(mode):
        return "dir"
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        raise run.refuse(info.filename, "it is a device, FIFO or socket, not a file")
    return "file"


def _zip_link(run: _Run, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """A symlink entry's target, read with a cap whatever the entry claims or inflates to."""
    too_long = f"its link target is over {LINK_MAX} bytes, which no path is"
    if info.file_size > LINK_MAX:
        raise run.refuse(info.filename, too_long)
    with zf.open(info) as f:
        data = f.read(LINK_MAX + 1)
    if len(data) > LINK_MAX:
        raise run.refuse(info.filename, too_long)
    return os.fsdecode(data)


def _extract_zip(path: str, run: _Run) -> None:
    with zipfile.ZipFile(path) as zf:
        plan: list[tuple[zipfile.ZipInfo, str, str]] = []
        for info in zf.infolist():  # check what the archive alone decides before writing
            run.parts(info.filename)
            kind = _zip_kind(run, info)
            link = _zip_link(run, zf, info) if kind == "symlink" else ""
            if kind == "symlink" and link.startswith("/"):
                raise run.refuse(info.filename, f"it is a link to the absolute path {link!r}")
            if kind == "file":
                run.count(info.file_size)
            plan.append((info, kind, link))
        files = [i for i, k, _ in plan if k == "file"]
        needed = sum(i.file_size for i in files if not _has_size(run.tree.top, i))
        ensure_space(run.tree.top, needed, f"Extracting {run.label!r}", "nothing was written")
        run.progress.set_files(len(files))
        for info, kind, link in plan:
            if kind == "dir":
                run.folder(info.filename)
            elif kind == "symlink":
                run.symlink(info.filename, link)
            else:
                run.file(
                    info.filename,
                    info.file_size,
                    lambda i=info: zf.open(i),
                    mode=info.external_attr >> 16,
                    mtime=None,
                    is_done=lambda st, f, i=info: st.st_size == i.file_size and _crc(f()) == i.CRC,
                )


def _has_size(top: str, info: zipfile.ZipInfo) -> bool:
    """Whether a file of the entry's size is there already (a re-run will not rewrite it)."""
    try:
        st = os.lstat(os.path.join(top, *split(info.filename)))
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == info.file_size


def _extract_tar(path: str, run: _Run) -> None:
    with tarfile.open(path, "r|*") as tf:
        member: tarfile.TarInfo
        for member in tf:
            name = member.name
            if member.isdir():
                run.folder(name)
            elif member.issym():
                if len(member.linkname.encode("utf-8", "surrogateescape")) > LINK_MAX:
                    raise run.refuse(name, f"its link target is over {LINK_MAX} bytes")
                run.symlink(name, member.linkname)
            elif member.islnk():
                run.hardlink(name, member.linkname)
            elif member.isreg():
                run.count(member.size, name)
                if not _tar_done_size(run.tree.top, member):
                    ensure_space(
                        run.tree.top,
                        member.size,
                        f"Extracting {run.label!r} (at entry {name!r})",
                        "nothing this extraction wrote was kept",
                    )
                run.file(
                    name,
                    member.size,
                    lambda m=member: tf.extractfile(m),  # type: ignore[return-value,arg-type]
                    mode=member.mode,
                    mtime=member.mtime,
                    is_done=lambda st, f, m=member: (
                        st.st_size == m.size and int(st.st_mtime) == int(m.mtime)
                    ),
                )
            else:
                run.parts(name)
                raise run.refuse(name, "it is a device, FIFO or other special file")


def _tar_done_size(top: str, member: tarfile.TarInfo) -> bool:
    try:
        st = os.lstat(os.path.join(top, *split(member.name)))
    except (OSError, ValueError):
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == member.size
