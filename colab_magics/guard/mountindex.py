"""Drive's side of the mount: the children of the folders we look at, kept current by changes.

A folder is listed once, the first time it is asked for; after that :meth:`DriveFolders.refresh`
applies ``changes.list`` (one call when nothing changed) instead of listing again, so asking
about an unchanged folder costs a dictionary lookup. :meth:`DriveFolders.prefetch` lists many
folders at once on a bounded pool of threads (a dataset of class folders, checked the first
time), in pages of 1,000, each request through the client's shared pacer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence

from colab_magics.drive import DriveClient, DriveError, DriveFile, listing
from colab_magics.drive.errors import DriveAuthError
from colab_magics.drive.paths import pick
from colab_magics.drive.pool import run_each
from colab_magics.progress import NO_SINK, Sink

# Google Docs, Sheets... have no bytes on Drive and show on the mount under other names
# (``x.gdoc``); comparing them by name would report them missing.
_NATIVE_PREFIX = "application/vnd.google-apps."
_FOLDER = "application/vnd.google-apps.folder"


def comparable(file: DriveFile) -> bool:
    """Whether the mount shows ``file`` under its own name (folders and binary files)."""
    return file.mime_type == _FOLDER or not file.mime_type.startswith(_NATIVE_PREFIX)


class DriveFolders:
    """``children(folder_id) -> {name: file}`` for the folders asked about, and path lookup.

    ``max_age`` is how old the view may get before a read applies the changes feed again
    (``0``: every read asks Drive). ``progress`` (anything with ``update(**fields)``, such as
    :class:`colab_magics.progress.Progress`) hears of each folder listed: ``folders_done``,
    ``folders_total``, ``files_listed`` and a ``message``. ``workers`` bounds the listings
    :meth:`prefetch` runs at once (the client's own count by default). Thread-safe.
    """

    def __init__(
        self,
        client: DriveClient,
        *,
        max_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        progress: Sink = NO_SINK,
        workers: int | None = None,
    ) -> None:
        self.client = client
        self.max_age = max_age
        self.progress = progress
        self.workers = workers or client.workers
        self._clock = clock
        self._lock = threading.RLock()
        self._children: dict[str, dict[str, list[DriveFile]]] = {}
        self._picked: dict[str, dict[str, DriveFile]] = {}  # children() answers, until a change
        self._where: dict[str, set[tuple[str, str]]] = {}  # file id -> (cached folder, name)
        self._versions: dict[str, int] = {}
        self._epoch = 0  # bumped when every listing is dropped
        self._token: str | None = None
        self._refreshed = float("-inf")
        self._root: DriveFile | None = None
        self._root_ids: set[str] = set()
        self.version = 0
        """Bumped whenever a change reached a cached folder (or the cache was dropped)."""

    @property
    def root(self) -> DriveFile:
        with self._lock:
            if self._root is None:
                self._root = self.client.resolver.root
                self._root_ids = {self._root.id}
            return self._root

    def refresh(self, *, force: bool = False) -> int:
        """Apply the changes feed if the view is older than ``max_age`` (or ``force``).

        Returns how many changes were applied.
        """
        with self._lock:
            now = self._clock()
            if not force and now - self._refreshed < self.max_age:
                return 0
            self._refreshed = now
            transport = self.client.transport
            if self._token is None:
                self._token = listing.start_page_token(transport)
                return 0
            try:
                changes, self._token = listing.list_changes(transport, self._token)
            except DriveAuthError:
                raise
            except DriveError:
                # An expired feed: forget every listing and start a new feed before relisting,
                # so no change falls between the two.
                self._drop()
                self._token = listing.start_page_token(transport)
                return 0
            for file_id, file in changes:
                self._apply(file_id, file)
            return len(changes)

    def _apply(self, file_id: str, file: DriveFile | None) -> None:
        touched: set[str] = set()
        for key, name in self._where.pop(file_id, ()):
            same = self._children.get(key, {}).get(name, [])
            kept = [f for f in same if f.id != file_id]
            if len(kept) != len(same):
                touched.add(key)
                if kept:
                    self._children[key][name] = kept
                else:
                    del self._children[key][name]
        if file is not None and not file.trashed:
            for parent in file.parents:
                key = self._key(parent)
                if key in self._children:
                    self._add(key, file)
                    touched.add(key)
        for key in touched:
            self._picked.pop(key, None)
            self._versions[key] = self._versions.get(key, 0) + 1
        if touched:
            self.version += 1

    def _add(self, key: str, file: DriveFile) -> None:
        self._children[key].setdefault(file.name, []).append(file)
        self._where.setdefault(file.id, set()).add((key, file.name))

    def folder_version(self, folder_id: str) -> int:
        """Bumped whenever a change reaches this folder's listing (or listings are dropped)."""
        with self._lock:
            return self._versions.get(self._key(folder_id), 0) + self._epoch

    def _key(self, folder_id: str) -> str:
        """My Drive may be known by the ``root`` alias and by its real id: one key for both."""
        return self.root.id if folder_id in self._root_ids else folder_id

    def children(self, folder_id: str) -> dict[str, DriveFile]:
        """Untrashed children of a folder by name (the file paths resolve to, where names
        repeat); listed on first use. Call :meth:`refresh` first for a current view. The dict
        returned is shared: do not change it."""
        with self._lock:
            key = self._key(folder_id)
            named = self._children.get(key)
            if named is None:
                self._start_feed()
                files = listing.list_children(self.client.transport, folder_id)
                named = self._install(key, files)
            picked = self._picked.get(key)
            if picked is None:
                picked = self._picked[key] = {name: pick(same) for name, same in named.items()}
            return picked

    def prefetch(self, folder_ids: Iterable[str]) -> None:
        """List the folders among ``folder_ids`` not listed yet, ``workers`` at a time, so a
        first check of many folders costs about one round trip per ``workers`` folders rather
        than one per folder. Raises the first listing's error after the others finished (what
        did list is kept)."""
        with self._lock:
            # The lock is held throughout: a changes page applied between a listing and its
            # install would be lost for that folder.
            todo = {self._key(f): f for f in folder_ids}
            todo = {k: f for k, f in todo.items() if k not in self._children}
            if not todo:
                return
            self._start_feed()
            transport = self.client.transport
            done = [0, 0]
            errors: list[BaseException] = []

            def listed(key: str, files: list[DriveFile]) -> None:
                self._install(key, files)
                done[0] += 1
                done[1] += len(files)
                self._tell(done[0], len(todo), done[1])

            run_each(
                todo.items(),
                lambda folder_id: listing.list_children(transport, folder_id),
                jobs=min(self.workers, len(todo)),
                on_result=listed,
                on_error=lambda key, exc: errors.append(exc),
            )
            if errors:
                raise errors[0]

    def _start_feed(self) -> None:
        """The changes feed starts before the first listing, so no change slips between."""
        if self._token is None:
            self._token = listing.start_page_token(self.client.transport)

    def _install(self, key: str, files: list[DriveFile]) -> dict[str, list[DriveFile]]:
        named = self._children[key] = {}
        for f in files:
            self._add(key, f)
        if key == self.root.id:
            # Changes name My Drive by its real id, never by the alias.
            for f in files:
                self._root_ids.update(f.parents)
        return named

    def _tell(self, done: int, total: int, files: int) -> None:
        self.progress.update(
            folders_done=done,
            folders_total=total,
            files_listed=files,
            message=f"listing Drive folders: {done}/{total} ({files:,} files)",
        )

    def lookup(self, parts: Sequence[str]) -> DriveFile | None:
        """The file at ``parts`` below My Drive, or None where Drive has nothing there."""
        current = self.root
        for name in parts:
            if not current.is_folder:
                return None
            found = self.children(current.id).get(name)
            if found is None:
                return None
            current = found
        return current

    def forget(self) -> None:
        """Drop every listing (the next read lists again)."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        self._children.clear()
        self._picked.clear()
        self._where.clear()
        self._epoch += 1
        self.version += 1
