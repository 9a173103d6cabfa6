"""Safe, resumable extraction of .zip and .tar(.gz/.tgz) archives into a local folder.

Every entry is checked before anything is written for it: an absolute name, a ``..``
component, a path that would pass through a link leading out of the target, a symlink or
hardlink pointing out, or a device/FIFO entry is refused with :class:`ArchiveError` naming the
entry. A zip is checked whole before its first entry is written; a tar (read as a stream, so a
45 GB .tar.gz is decompressed once) entry by entry, so a refusal may come after earlier,
safe entries were written — inside the target only. Files are written to ``<name>.part`` and
renamed when complete; a re-run skips entries already there with the right size (and CRC for
zip, mtime for tar, which extraction sets).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any

from colab_magics.drive import NO_PROGRESS, Callback
from colab_magics.sync.errors import ArchiveError
from colab_magics.sync.local import ensure_space
from colab_magics.sync.report import SyncReport

COPY_BLOCK = 1024 * 1024
KINDS = {
    ".zip": "zip",
    ".tar": "tar",
    ".tar.gz": "tar",
    ".tgz": "tar",
    ".tar.bz2": "tar",
    ".tar.xz": "tar",
}
CORRUPT = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, ValueError)


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
) -> SyncReport:
    """Extract ``archive`` into the folder ``dest`` (created if needed); see the module doc.

    ``name`` is how to call the archive in messages (its Drive name).
    """
    path = os.fspath(archive)
    label = name or os.path.basename(path)
    kind = archive_kind(label)
    if kind is None:
        raise ArchiveError(
            f"{label!r} is not an archive sync can extract: use .zip, .tar, .tar.gz or .tgz."
        )
    report = report if report is not None else SyncReport()
    root = os.fspath(dest)
    os.makedirs(root, exist_ok=True)
    writer = _Writer(os.path.realpath(root), progress, report)
    try:
        if kind == "zip":
            _extract_zip(path, writer)
        else:
            _extract_tar(path, writer)
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
    return report


def _refuse(entry: str, why: str) -> ArchiveError:
    return ArchiveError(
        f"Refusing archive entry {entry!r}: {why}. Nothing is written outside the target; "
        "extract an archive you trust, or remove that entry from it."
    )


class _Writer:
    """Places entries under ``root`` (a real path), refusing any that would escape it."""

    def __init__(self, root: str, progress: Callback, report: SyncReport) -> None:
        self.root = root
        self.progress = progress
        self.report = report

    def target(self, entry: str) -> str | None:
        """The absolute path for ``entry`` (None for the root itself), or raise."""
        if entry.startswith(("/", "\\")) or (len(entry) > 1 and entry[1] == ":"):
            raise _refuse(entry, "it has an absolute path")
        parts = [p for p in entry.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise _refuse(entry, "its path climbs out of the target with '..'")
        if not parts:
            return None
        dest = os.path.join(self.root, *parts)
        if not self.inside(os.path.realpath(os.path.dirname(dest))):
            raise _refuse(entry, "its folder is a link that leads outside the target")
        return dest

    def inside(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root + os.sep)

    def check_link(self, entry: str, dest: str, link: str, kind: str) -> None:
        if os.path.isabs(link):
            raise _refuse(entry, f"it is a {kind} to the absolute path {link!r}")
        base = os.path.dirname(dest) if kind == "symlink" else self.root
        if not self.inside(os.path.normpath(os.path.join(os.path.realpath(base), link))):
            raise _refuse(entry, f"it is a {kind} pointing outside the target ({link!r})")

    def folder(self, dest: str) -> None:
        if os.path.islink(dest):
            os.unlink(dest)
        os.makedirs(dest, exist_ok=True)

    def file(
        self,
        dest: str,
        size: int,
        opener: Callable[[], IO[bytes]],
        mtime: float | None,
        mode: int,
        is_done: Callable[[str], bool],
    ) -> None:
        """Write one file entry via ``<dest>.part`` unless ``is_done(dest)`` says it is there."""
        if os.path.isfile(dest) and not os.path.islink(dest) and is_done(dest):
            self.report.skipped += 1
            self.progress.file_done(dest)
            return
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        part = dest + ".part"
        self.progress.set_size(size)
        try:
            with opener() as src, open(part, "wb") as out:
                while block := src.read(COPY_BLOCK):
                    out.write(block)
                    self.progress.relative_update(len(block))
            if mode & 0o111:
                os.chmod(part, 0o755)
            if mtime is not None:
                os.utime(part, (mtime, mtime))
            os.replace(part, dest)
        except BaseException:
            _unlink(part)
            raise
        self.report.extracted += 1
        self.report.bytes += size
        self.progress.file_done(dest)

    def symlink(self, dest: str, link: str) -> None:
        if os.path.islink(dest) and os.readlink(dest) == link:
            self.report.skipped += 1
            return
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        part = dest + ".part"
        _unlink(part)
        os.symlink(link, part)
        os.replace(part, dest)
        self.report.extracted += 1

    def hardlink(self, dest: str, source: str) -> None:
        if not os.path.isfile(source):
            raise ArchiveError(f"hardlink {dest!r} refers to {source!r}, which is not extracted")
        if os.path.exists(dest) and os.path.samefile(dest, source):
            self.report.skipped += 1
            return
        part = dest + ".part"
        _unlink(part)
        os.link(source, part)
        os.replace(part, dest)
        self.report.extracted += 1


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _zip_crc(path: str) -> int:
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(COPY_BLOCK):
            crc = zlib.crc32(block, crc)
    return crc


@contextlib.contextmanager
def _clash(entry: str) -> Iterator[None]:
    """A file where the archive needs a folder, or the other way round: name the entry."""
    try:
        yield
    except (FileExistsError, IsADirectoryError, NotADirectoryError) as exc:
        raise ArchiveError(
            f"Archive entry {entry!r} clashes with a file or folder of the same name (earlier "
            f"in the archive, or already in the target): {exc.strerror}: {exc.filename!r}. "
            "Extract into an empty folder, or fix the archive."
        ) from exc


def _has_size(path: str, size: int) -> bool:
    try:
        return os.path.getsize(path) == size
    except OSError:
        return False


def _extract_zip(path: str, w: _Writer) -> None:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        plan: list[tuple[zipfile.ZipInfo, str | None, str]] = []
        for info in infos:  # check every entry before writing any
            dest = w.target(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                kind = "symlink"
            elif info.is_dir():
                kind = "dir"
            elif mode and not stat.S_ISREG(mode) and stat.S_IFMT(mode):
                raise _refuse(info.filename, "it is a device, FIFO or socket, not a file")
            else:
                kind = "file"
            if kind == "symlink" and dest is not None:
                w.check_link(info.filename, dest, zf.read(info).decode("utf-8"), "symlink")
            plan.append((info, dest, kind))
        files = [(i, d) for i, d, k in plan if k == "file" and d is not None]
        needed = sum(i.file_size for i, d in files if not _has_size(d, i.file_size))
        ensure_space(
            w.root, needed, f"Extracting {os.path.basename(path)!r}", "nothing was written"
        )
        w.progress.set_files(len(files))
        for info, dest, kind in plan:
            if dest is None:
                continue
            with _clash(info.filename):
                _place_zip(zf, w, info, dest, kind)


def _place_zip(
    zf: zipfile.ZipFile, w: _Writer, info: zipfile.ZipInfo, dest: str, kind: str
) -> None:
    if kind == "dir":
        w.folder(dest)
    elif kind == "symlink":
        w.symlink(dest, zf.read(info).decode("utf-8"))
    else:
        w.file(
            dest,
            info.file_size,
            lambda i=info: zf.open(i),
            None,
            info.external_attr >> 16,
            lambda d, i=info: os.path.getsize(d) == i.file_size and _zip_crc(d) == i.CRC,
        )


def _extract_tar(path: str, w: _Writer) -> None:
    with tarfile.open(path, "r|*") as tf:
        member: Any
        for member in tf:
            dest = w.target(member.name)
            if dest is None:
                continue
            with _clash(member.name):
                _place_tar(tf, w, member, dest)


def _place_tar(tf: tarfile.TarFile, w: _Writer, member: tarfile.TarInfo, dest: str) -> None:
    if member.isdir():
        w.folder(dest)
    elif member.issym():
        w.check_link(member.name, dest, member.linkname, "symlink")
        w.symlink(dest, member.linkname)
    elif member.islnk():
        w.check_link(member.name, dest, member.linkname, "hardlink")
        source = w.target(member.linkname)
        w.hardlink(dest, source or w.root)
    elif member.isreg():
        w.file(
            dest,
            member.size,
            lambda m=member: tf.extractfile(m),
            member.mtime,
            member.mode,
            lambda d, m=member: (
                os.path.getsize(d) == m.size and int(os.path.getmtime(d)) == int(m.mtime)
            ),
        )
    else:
        raise _refuse(member.name, "it is a device, FIFO or other special file")
