"""Drive paths: parsing, resolution to file ids, folders on demand, and an id cache.

Three spellings name the same file: ``checkpoints/run1/x.pt`` (relative to My Drive),
``drive:checkpoints/run1/x.pt``, and ``/content/drive/MyDrive/checkpoints/run1/x.pt`` (under the
mount root). Drive allows several files with one name in a folder, so resolution follows one
rule: **among the untrashed files of that name, the oldest ``createdTime`` wins, then the
smallest id** — a path keeps meaning the same file when a duplicate appears later. Folders win
over files for an intermediate component. The duplicates seen are reported (returned and
warned as :class:`DuplicateNameWarning`), or raised with ``unique=True``.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import threading
import warnings
from collections.abc import Callable, Sequence

from colab_magics.drive.errors import DriveDuplicateError, DriveNotFound
from colab_magics.drive.model import DriveFile

ROOT = "root"
COLAB_MOUNT = "/content/drive/MyDrive"
PREFIX = "drive:"


class DuplicateNameWarning(UserWarning):
    """A path matched several Drive files; the documented rule picked one."""


def parse_path(path: str | os.PathLike[str], mount_root: str | None = None) -> tuple[str, ...]:
    """The components of a Drive path below My Drive (``()`` is My Drive itself).

    Accepts ``drive:`` paths, paths under ``mount_root`` (or Colab's ``/content/drive/MyDrive``)
    and relative paths; another absolute local path is a ``ValueError`` (it is not on Drive).
    """
    text = os.fspath(path)
    if text.startswith(PREFIX):
        rel = text[len(PREFIX) :].lstrip("/")
    elif text.startswith("/"):
        rel = None
        for root in (mount_root, COLAB_MOUNT):
            if not root:
                continue
            root = root.rstrip("/")
            if text == root or text.startswith(root + "/"):
                rel = text[len(root) :].lstrip("/")
                break
        if rel is None:
            raise ValueError(
                f"{text!r} is a local path, not on Drive: use a path relative to My Drive, "
                f"'drive:...', or a path under the mount ({mount_root or COLAB_MOUNT})."
            )
    else:
        rel = text
    parts = []
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise ValueError(f"'..' is not allowed in a Drive path: {text!r}")
        parts.append(part)
    return tuple(parts)


def join(parts: Sequence[str]) -> str:
    return posixpath.join(*parts) if parts else ""


def query_literal(value: str) -> str:
    """A string literal for Drive's ``q`` language (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pick(candidates: Sequence[DriveFile]) -> DriveFile:
    """The documented rule for a name several files share: a folder before a file (what lies
    under the folder must stay reachable, and every client must mean the same thing by a
    path), then the oldest ``createdTime``, then the smallest id."""
    return min(candidates, key=lambda f: (not f.is_folder, f.created_time, f.id))


@dataclasses.dataclass(frozen=True)
class Resolution:
    """A resolved path: the file chosen, and every other file with the same name per level."""

    path: str
    file: DriveFile
    duplicates: dict[str, tuple[DriveFile, ...]] = dataclasses.field(default_factory=dict)


class IdCache:
    """``(parent_id, name) -> file`` for paths resolved or created by this client.

    It also covers Drive's listing lag: a folder just created may not show in ``files.list``
    for a while, and without the cache ``ensure_folder`` would create a second one.
    :meth:`apply_change` (fed from ``changes.list``) drops entries that a change may affect.
    Entries are also indexed by file id: a push caches every file it writes, and scanning
    them all for each change made a push of n files take time in n².
    """

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], DriveFile] = {}
        self._keys_of: dict[str, set[tuple[str, str]]] = {}
        self._lock = threading.Lock()

    def get(self, parent_id: str, name: str) -> DriveFile | None:
        with self._lock:
            return self._by_key.get((parent_id, name))

    def put(self, parent_id: str, file: DriveFile) -> None:
        with self._lock:
            self._set((parent_id, file.name), file)

    def forget_id(self, file_id: str) -> None:
        with self._lock:
            for key in list(self._keys_of.get(file_id, ())):
                self._drop(key)

    def apply_change(self, file_id: str, file: DriveFile | None) -> None:
        """A change to ``file_id`` (``file`` None when removed): fix or drop what it affects.

        A cached name whose file was removed, trashed, renamed or moved is dropped; so is a
        cached name that another file now also carries (the rule may pick that one), so the
        next lookup lists the folder again. An unchanged cached file stays (our own creations
        come back through the feed, and listing may not show them yet).
        """
        with self._lock:
            for key in list(self._keys_of.get(file_id, ())):
                parent, name = key
                if file is None or file.trashed or file.name != name or parent not in file.parents:
                    self._drop(key)
                else:
                    self._set(key, file)
            if file is not None and not file.trashed:
                for parent in file.parents:
                    cached = self._by_key.get((parent, file.name))
                    if cached is not None and cached.id != file_id:
                        self._drop((parent, file.name))

    def clear(self) -> None:
        with self._lock:
            self._by_key.clear()
            self._keys_of.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_key)

    def _set(self, key: tuple[str, str], file: DriveFile) -> None:
        self._drop(key)
        self._by_key[key] = file
        self._keys_of.setdefault(file.id, set()).add(key)

    def _drop(self, key: tuple[str, str]) -> None:
        old = self._by_key.pop(key, None)
        if old is not None:
            keys = self._keys_of[old.id]
            keys.discard(key)
            if not keys:
                del self._keys_of[old.id]


Lister = Callable[[str, str], list[DriveFile]]
"""``lister(parent_id, name)``: untrashed children of ``parent_id`` called ``name`` (a lister
may also return names that differ in case, as Drive's ``name =`` does: they are dropped)."""
FolderMaker = Callable[[str, str], DriveFile]
"""``make_folder(parent_id, name)``: create one folder and return it."""


class Resolver:
    """Turns parsed paths into files, listing one folder level at a time (through the cache)."""

    def __init__(self, lister: Lister, make_folder: FolderMaker, root: DriveFile) -> None:
        self._list = lister
        self._make_folder = make_folder
        self.root = root
        self.cache = IdCache()
        self._create_lock = threading.Lock()

    def resolve(self, parts: Sequence[str], *, unique: bool = False) -> Resolution:
        """The file at ``parts``; :class:`DriveNotFound` names the first missing component."""
        current = self.root
        dups: dict[str, tuple[DriveFile, ...]] = {}
        for i, name in enumerate(parts):
            want_folder = i < len(parts) - 1
            if not current.is_folder:
                raise DriveNotFound(
                    f"Not found on Drive: {join(parts)!r} ({join(parts[:i])!r} is a file).",
                    status=404,
                    reason="notFound",
                )
            found = self._child(current.id, name, want_folder, parts[: i + 1], dups, unique)
            if found is None:
                raise DriveNotFound(
                    f"Not found on Drive: {join(parts)!r} (no {join(parts[: i + 1])!r}).",
                    status=404,
                    reason="notFound",
                )
            current = found
        return Resolution(join(parts), current, dups)

    def ensure_folder(self, parts: Sequence[str]) -> DriveFile:
        """The folder at ``parts``, creating missing levels (one creator at a time, so two
        threads asking for the same new folder do not make two)."""
        current = self.root
        for i, name in enumerate(parts):
            found = self._child(current.id, name, True, parts[: i + 1], {}, False)
            if found is None or not found.is_folder:
                with self._create_lock:
                    found = self.cache.get(current.id, name)
                    if found is None or not found.is_folder:
                        found = self._make_folder(current.id, name)
                        self.cache.put(current.id, found)
            current = found
        return current

    def _child(
        self,
        parent_id: str,
        name: str,
        want_folder: bool,
        parts: Sequence[str],
        dups: dict[str, tuple[DriveFile, ...]],
        unique: bool,
    ) -> DriveFile | None:
        cached = self.cache.get(parent_id, name)
        if cached is not None and (cached.is_folder or not want_folder):
            return cached
        candidates = [f for f in self._list(parent_id, name) if f.name == name]
        if not candidates:
            return None
        chosen = pick(candidates)
        if len(candidates) > 1:
            path = join(parts)
            ids = sorted(f.id for f in candidates)
            if unique:
                raise DriveDuplicateError(
                    f"{len(candidates)} files on Drive are named {path!r}; rename or delete "
                    "the extra ones, or refer to the file by id.",
                    ids=ids,
                    reason="duplicateName",
                )
            dups[path] = tuple(candidates)
            warnings.warn(
                f"{len(candidates)} files on Drive are named {path!r}; using the oldest "
                f"(id {chosen.id}). Others: {', '.join(i for i in ids if i != chosen.id)}.",
                DuplicateNameWarning,
                stacklevel=4,
            )
        self.cache.put(parent_id, chosen)
        return chosen
