"""The local side: a scan of a tree (size, mtime) and an md5 cache that survives runs.

Hashing 10,000 unchanged files on every push would cost more than the push, so md5s are kept
in a small JSON sidecar per local root, keyed by ``(relative path, size, mtime_ns)``; a file
whose size or mtime moved is hashed again. The sidecar lives in a cache folder, never inside
the tree being synced (it would be pushed too).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from colab_magics.drive.staging import is_staging
from colab_magics.sync.errors import SyncAborted, SyncError
from colab_magics.units import format_bytes

HASH_BLOCK = 1024 * 1024
SAVE_EVERY = 30.0
"""Seconds between saves of the md5 cache during a long run."""
SPACE_MARGIN = 64 * 1024 * 1024
"""Keep this much free beyond what a transfer needs (the OS, logs, the md5 cache)."""


@dataclasses.dataclass(frozen=True)
class LocalFile:
    path: str
    size: int
    mtime_ns: int


@dataclasses.dataclass
class LocalTree:
    """``files``/``dirs`` by path relative to the root (``/``-separated)."""

    root: str
    files: dict[str, LocalFile]
    dirs: set[str]
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    """Folders that could not be read (permission denied...): path -> why."""


def scan(root: str | os.PathLike[str]) -> LocalTree:
    """Every regular file and folder under ``root`` (symlinks to files are followed, links to
    folders are not descended, so a link cycle cannot hang a push)."""
    top = os.fspath(root)
    if not os.path.exists(top):
        raise SyncError(f"Local path {top!r} does not exist; check the spelling and the cwd.")
    files: dict[str, LocalFile] = {}
    dirs: set[str] = set()
    errors: dict[str, str] = {}
    if not os.path.isdir(top):
        st = os.stat(top)
        name = os.path.basename(top)
        return LocalTree(
            os.path.dirname(top), {name: LocalFile(top, st.st_size, st.st_mtime_ns)}, dirs
        )
    stack = [("", top)]
    while stack:
        prefix, folder = stack.pop()
        try:
            it = os.scandir(folder)
        except OSError as exc:  # one unreadable folder must not stop the rest
            errors[prefix.rstrip("/") or "."] = f"cannot read this folder: {exc.strerror}"
            continue
        with it:
            for entry in it:
                rel = f"{prefix}{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    if is_staging(entry.path):  # a download's temporaries: never synced
                        continue
                    dirs.add(rel)
                    stack.append((rel + "/", entry.path))
                elif entry.is_file():
                    try:
                        st = entry.stat()
                    except FileNotFoundError:  # removed since the listing (a temp file)
                        continue
                    files[rel] = LocalFile(entry.path, st.st_size, st.st_mtime_ns)
    return LocalTree(top, files, dirs, errors)


def file_md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "colab_magics"


class Md5Cache:
    """``relative path -> (size, mtime_ns, md5)`` for one local root, saved as JSON."""

    def __init__(self, root: str, cache_dir: str | os.PathLike[str] | None = None) -> None:
        real = os.path.realpath(root)
        key = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:20]
        folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.path = folder / "md5" / f"{key}.json"
        self.hashed = 0
        self._lock = threading.Lock()
        self._dirty = False
        self._saved_at = time.monotonic()
        self._entries: dict[str, list] = {}
        try:
            data = json.loads(self.path.read_text())
            if data.get("root") == real:
                self._entries = data.get("files", {})
        except (OSError, ValueError, AttributeError):
            pass  # no cache yet, or unreadable: hash again
        self._real = real

    def get(self, rel: str, f: LocalFile) -> str | None:
        with self._lock:
            hit = self._entries.get(rel)
        if hit and hit[0] == f.size and hit[1] == f.mtime_ns:
            return hit[2]
        return None

    def put(self, rel: str, f: LocalFile, md5: str) -> None:
        with self._lock:
            self._entries[rel] = [f.size, f.mtime_ns, md5]
            self._dirty = True
            due = time.monotonic() - self._saved_at > SAVE_EVERY
        if due:  # a runtime that dies mid-push keeps most of what it hashed
            self.save()

    def md5(self, rel: str, f: LocalFile) -> str:
        """The md5 of ``f``, from the cache when its size and mtime are unchanged."""
        cached = self.get(rel, f)
        if cached is not None:
            return cached
        digest = file_md5(f.path)
        with self._lock:
            self.hashed += 1
        self.put(rel, f, digest)
        return digest

    def save(self) -> None:
        """Write atomically (temp + rename); a cache that cannot be written is not an error."""
        with self._lock:
            if not self._dirty:
                return
            data = {"root": self._real, "files": dict(self._entries)}
            self._dirty = False
            self._saved_at = time.monotonic()
        save_json(self.path, data)


def save_json(path: Path, data: object) -> None:
    """Write ``data`` to ``path`` atomically (temp + rename); a cache file that cannot be
    written is not an error."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, separators=(",", ":"))
        os.replace(tmp, path)
    except OSError:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def restat(f: LocalFile) -> LocalFile | None:
    """``f`` as it is now, or None if it is gone."""
    try:
        st = os.stat(f.path)
    except FileNotFoundError:
        return None
    return LocalFile(f.path, st.st_size, st.st_mtime_ns)


def ensure_space(path: str, needed: int, action: str, untouched: str) -> None:
    """Refuse to start writing ``needed`` bytes the disk holding ``path`` cannot take: better
    now than at 90%. ``untouched`` says what was left as it was."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    free = shutil.disk_usage(probe).free
    if needed + SPACE_MARGIN > free:
        raise SyncAborted(
            f"{action} would not fit: it needs {format_bytes(needed)} more on the local disk "
            f"holding {probe!r}, which has {format_bytes(free)} free (and keeps "
            f"{format_bytes(SPACE_MARGIN)} spare); {untouched}. Free space (`df -h`) or choose "
            "a folder on a bigger disk."
        )
