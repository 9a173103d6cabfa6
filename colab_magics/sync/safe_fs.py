"""Writing entries under one folder without ever following a link out of it.

Paths are resolved here component by component against what is on disk — links that were
already there and links this run created — never as normalised text: a folder is entered with
``O_NOFOLLOW`` relative to its parent's descriptor, a link met on the way is read and its
target walked the same way, and ``..`` above the top is an escape. Files and links are made
in a staging folder this run creates under a random name, then renamed into place: the rename
replaces a link found at the final name instead of writing through it, and no entry of an
archive can name (or plant a link at) a temporary file. What is created is remembered, so a
refused archive can be taken back out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO

MAX_HOPS = 40
"""Links followed while resolving one path (Linux's own limit, past which it says ELOOP)."""
STAGING_PREFIX = ".colab_magics-extract-"
_STAGING = re.compile(re.escape(STAGING_PREFIX) + r"[0-9a-f]{16}\Z")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # absent on Windows, where SUPPORTED is False
_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
SUPPORTED = bool(_NOFOLLOW) and {os.open, os.mkdir, os.rename, os.link} <= os.supports_dir_fd
"""Whether this system can open files relative to a folder descriptor (Linux, macOS)."""


class Escape(Exception):
    """The path leaves the folder; the message says how."""


@dataclasses.dataclass
class Spot:
    """Where a path resolved to: the real folder ``parts`` (relative to the top, no links in
    it), open as ``fd``, and the ``name`` in it (None: the folder itself)."""

    fd: int
    parts: tuple[str, ...]
    name: str | None

    def lstat(self) -> os.stat_result | None:
        if self.name is None:
            return os.fstat(self.fd)
        try:
            return os.lstat(self.name, dir_fd=self.fd)
        except FileNotFoundError:
            return None

    @property
    def rel(self) -> str:
        return "/".join(self.parts + ((self.name,) if self.name else ()))


def split(path: str) -> list[str]:
    """``path``'s components, without empty ones and ``.``."""
    return [p for p in path.split("/") if p not in ("", ".")]


class Tree:
    """The folder ``top``, written only through descriptors resolved as the module says."""

    def __init__(self, top: str) -> None:
        os.makedirs(top, exist_ok=True)
        self.top = top
        self.real = os.path.realpath(top)
        self.fd = os.open(top, _DIR & ~_NOFOLLOW)  # the top itself may be a link: the user's
        self.created: list[tuple[tuple[str, ...], str]] = []
        """(real path parts, "dir" | "file") of everything this run made, in order."""
        self.links: dict[tuple[str, ...], str] = {}
        """Links this run made or found already right: real path parts -> the entry's name."""
        self._stage: tuple[int, str] | None = None
        self._count = 0
        umask = os.umask(0o022)
        os.umask(umask)
        self.umask = umask

    def close(self) -> None:
        """Remove the staging folder and close the top."""
        if self._stage is not None:
            fd, name = self._stage
            _empty_staging(fd)
            os.close(fd)
            with contextlib.suppress(OSError):
                os.rmdir(name, dir_fd=self.fd)
            self._stage = None
        os.close(self.fd)

    def remove_stale_staging(self) -> None:
        """Staging folders a killed run left at the top (only this module's own names)."""
        for entry in os.scandir(self.fd):
            if _STAGING.match(entry.name) and entry.is_dir(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    fd = os.open(entry.name, _DIR, dir_fd=self.fd)
                    try:
                        _empty_staging(fd)
                    finally:
                        os.close(fd)
                    os.rmdir(entry.name, dir_fd=self.fd)

    # -- resolving -----------------------------------------------------------------------

    @contextlib.contextmanager
    def at(self, parts: Sequence[str], *, create: bool, follow_last: bool) -> Iterator[Spot]:
        """Resolve ``parts`` from the top; folders on the way are made when ``create``."""
        spot = self._walk(list(parts), create=create, follow_last=follow_last, lexical=False)
        assert spot is not None
        try:
            yield spot
        finally:
            os.close(spot.fd)

    def check_inside(self, parts: Sequence[str]) -> None:
        """Raise :class:`Escape` if ``parts``, links followed, leaves the top or goes round a
        loop of links. What does not exist (yet) is resolved as text, like ``realpath``."""
        spot = self._walk(list(parts), create=False, follow_last=True, lexical=True)
        if spot is not None:
            os.close(spot.fd)

    def _walk(
        self, todo: list[str], *, create: bool, follow_last: bool, lexical: bool
    ) -> Spot | None:
        todo.reverse()  # a stack: the next component is todo[-1]
        todo[:] = [p for p in todo if p not in ("", ".")]
        fd = os.dup(self.fd)
        parts: list[str] = []
        virtual: list[str] = []  # components past one that does not exist: text only
        hops = 0
        try:
            while todo:
                name = todo.pop()
                if name == "..":
                    if virtual:
                        virtual.pop()
                    elif not parts:
                        raise Escape("its path climbs out of the target with '..'")
                    else:
                        up = os.open("..", _DIR, dir_fd=fd)
                        os.close(fd)
                        fd = up
                        parts.pop()
                    continue
                if virtual:
                    virtual.append(name)
                    continue
                last = not todo
                if last and not follow_last:
                    return Spot(fd, tuple(parts), name)
                try:
                    st = os.lstat(name, dir_fd=fd)
                except FileNotFoundError:
                    st = None
                if st is not None and stat.S_ISLNK(st.st_mode):
                    hops += 1
                    if hops > MAX_HOPS:  # the kernel says ELOOP; realpath() guesses a path
                        raise Escape("its path goes round a loop of links")
                    target = os.readlink(name, dir_fd=fd)
                    if target.startswith("/"):
                        target = self._from_top(target)
                        os.close(fd)
                        fd, parts = os.dup(self.fd), []
                    todo.extend(reversed(split(target)))
                    continue
                if last:
                    return Spot(fd, tuple(parts), name)
                if st is None and create:
                    os.mkdir(name, 0o777, dir_fd=fd)
                    self.created.append(((*parts, name), "dir"))
                elif st is None or not stat.S_ISDIR(st.st_mode):
                    if lexical:
                        virtual.append(name)
                        continue
                    if st is None:
                        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
                    raise NotADirectoryError(
                        errno.ENOTDIR, os.strerror(errno.ENOTDIR), "/".join((*parts, name))
                    )
                down = os.open(name, _DIR, dir_fd=fd)
                os.close(fd)
                fd = down
                parts.append(name)
            if virtual:
                os.close(fd)
                return None
            return Spot(fd, tuple(parts), None)
        except BaseException:
            os.close(fd)
            raise

    def _from_top(self, target: str) -> str:
        """An absolute link found on disk: the rest of its path if it names something under
        the top, else an escape."""
        if target == self.real or target.startswith(self.real.rstrip("/") + "/"):
            return target[len(self.real) :]
        raise Escape(f"it goes through a link that leads outside the target (to {target!r})")

    # -- writing -------------------------------------------------------------------------

    def _temp(self) -> tuple[int, str]:
        if self._stage is None:
            name = STAGING_PREFIX + secrets.token_hex(8)
            os.mkdir(name, 0o700, dir_fd=self.fd)
            self._stage = (os.open(name, _DIR, dir_fd=self.fd), name)
        self._count += 1
        return self._stage[0], str(self._count)

    def _place(self, stage: int, temp: str, spot: Spot, kind: str, existed: bool) -> None:
        assert spot.name is not None
        try:
            os.rename(temp, spot.name, src_dir_fd=stage, dst_dir_fd=spot.fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=stage)
            raise
        if not existed:
            self.created.append(((*spot.parts, spot.name), kind))

    def write_file(
        self,
        spot: Spot,
        fill: Callable[[BinaryIO], None],
        *,
        executable: bool,
        mtime: float | None,
    ) -> None:
        """Write a new file at ``spot`` (replacing a file or link there) with ``fill``."""
        stage, temp = self._temp()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(temp, flags, 0o600, dir_fd=stage)
        try:
            with os.fdopen(fd, "wb", closefd=False) as out:
                fill(out)
            os.fchmod(fd, (0o755 if executable else 0o644) & ~self.umask)
            if mtime is not None:
                with contextlib.suppress(OSError, OverflowError, ValueError):
                    os.utime(fd, (mtime, mtime))
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=stage)
            raise
        os.close(fd)
        st = spot.lstat()
        self._place(stage, temp, spot, "file", st is not None and stat.S_ISREG(st.st_mode))

    def symlink(self, spot: Spot, target: str, entry: str) -> None:
        """Make (or replace with) a link at ``spot``; the caller checked ``target``."""
        stage, temp = self._temp()
        os.symlink(target, temp, dir_fd=stage)
        self._place(stage, temp, spot, "file", False)
        self.links[(*spot.parts, spot.name or "")] = entry

    def hardlink(self, spot: Spot, source: Spot) -> None:
        """Make ``spot`` another name of the regular file at ``source``."""
        assert source.name is not None
        stage, temp = self._temp()
        os.link(source.name, temp, src_dir_fd=source.fd, dst_dir_fd=stage, follow_symlinks=False)
        self._place(stage, temp, spot, "file", False)

    def mkdir(self, spot: Spot) -> None:
        assert spot.name is not None
        os.mkdir(spot.name, 0o777, dir_fd=spot.fd)
        self.created.append(((*spot.parts, spot.name), "dir"))

    def open_existing(self, spot: Spot) -> BinaryIO:
        """The regular file at ``spot`` for reading, never through a link."""
        assert spot.name is not None
        fd = os.open(spot.name, os.O_RDONLY | _NOFOLLOW, dir_fd=spot.fd)
        return os.fdopen(fd, "rb")

    # -- after the last entry, or on refusal ------------------------------------------------

    def escaping_link(self) -> tuple[str, str] | None:
        """(entry, why) for a link of this run that now resolves outside (a later entry can
        change what an earlier link's target passes through), else None."""
        for parts, entry in self.links.items():
            target = ""
            try:
                with self.at(parts[:-1], create=False, follow_last=True) as spot:
                    st = os.lstat(parts[-1], dir_fd=spot.fd)
                    if not stat.S_ISLNK(st.st_mode):
                        continue
                    target = os.readlink(parts[-1], dir_fd=spot.fd)
                self.check_inside([*parts[:-1], *split(target)])
            except Escape as exc:
                return entry, f"it is a link to {target!r}, which now leads outside ({exc})"
            except OSError:
                continue  # replaced by a later entry: not a link of this run any more
        return None

    def undo(self) -> None:
        """Remove what this run created, newest first (folders only when empty)."""
        for parts, kind in reversed(self.created):
            try:
                with self._strict(parts[:-1]) as fd:
                    if kind == "dir":
                        os.rmdir(parts[-1], dir_fd=fd)
                    else:
                        st = os.lstat(parts[-1], dir_fd=fd)
                        if not stat.S_ISDIR(st.st_mode):
                            os.unlink(parts[-1], dir_fd=fd)
            except OSError:
                continue
        self.created.clear()
        self.links.clear()

    @contextlib.contextmanager
    def _strict(self, parts: Sequence[str]) -> Iterator[int]:
        """Open the real folder ``parts`` following no link at all."""
        fd = os.dup(self.fd)
        try:
            for name in parts:
                down = os.open(name, _DIR, dir_fd=fd)
                os.close(fd)
                fd = down
            yield fd
        finally:
            os.close(fd)


def _empty_staging(fd: int) -> None:
    for entry in os.scandir(fd):
        if not entry.is_dir(follow_symlinks=False):
            with contextlib.suppress(OSError):
                os.unlink(entry.name, dir_fd=fd)
