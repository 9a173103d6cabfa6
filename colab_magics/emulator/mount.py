"""A simulated Colab Drive mount: a local folder synced to the emulator with lag.

Colab's FUSE mount uploads what is written into it asynchronously, loses what was not uploaded
when the runtime dies, and lists very large folders only partly. ``MountSimulator`` does the
three: a local file reaches Drive once left unchanged for ``lag`` seconds, ``stop()`` drops
what is pending, and a folder shows at most ``list_cap`` of its children. It talks Drive v3
REST to the emulator's inner WSGI app in process, knows files by id and maps them by name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from colab_magics.emulator.mount_rest import DriveRest
from colab_magics.emulator.schema import FOLDER_MIME, NATIVE_PREFIX


@dataclasses.dataclass
class _Remote:
    """What the simulator knows of one Drive file."""

    id: str
    name: str
    mime: str
    parents: tuple[str, ...]
    md5: str | None
    created: str

    @property
    def is_folder(self) -> bool:
        return self.mime == FOLDER_MIME

    @property
    def is_native(self) -> bool:
        return self.mime.startswith(NATIVE_PREFIX) and not self.is_folder


@dataclasses.dataclass
class _Synced:
    """A path whose local and Drive content last agreed: the Drive id and the local stat."""

    id: str
    md5: str | None
    stat: tuple[int, int] | None  # (mtime_ns, size) of the local file; None for a folder
    pulled: bool = False  # came down from Drive (so it goes when the listing stops showing it)


class MountSimulator:
    """A local folder mirroring My Drive the way Colab's FUSE mount does, lag and all.

    ``mount_dir`` plays ``/content/drive/MyDrive``; ``app`` is the emulator's inner Drive app;
    ``lag`` is how long a local change must stay unchanged before it is uploaded;
    ``list_cap`` is how many children of one Drive folder show up locally (None: all).
    """

    def __init__(
        self,
        mount_dir: str | os.PathLike,
        app: Callable,
        *,
        token: str,
        lag: float = 2.0,
        list_cap: int | None = None,
        poll_interval: float = 0.2,
    ) -> None:
        self.mount_dir = Path(mount_dir)
        self.lag = lag
        self.list_cap = list_cap
        self.poll_interval = poll_interval
        self._drive = DriveRest(app, token)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._root: str | None = None
        self._page_token: str | None = None
        self._remote: dict[str, _Remote] = {}
        self._tree_dirty = True
        self._visible: dict[str, _Remote] = {}  # what the mount shows: capped, one per name
        self._paths: dict[str, _Remote] = {}  # every path on Drive (uncapped), for pushes
        self._synced: dict[str, _Synced] = {}
        self._quiet_since: dict[str, tuple[object, float]] = {}
        self._md5_cache: dict[str, tuple[tuple[int, int], str]] = {}
        self.last_error: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> MountSimulator:
        """Mirror Drive into the folder once, then keep syncing in a daemon thread."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            self.mount_dir.mkdir(parents=True, exist_ok=True)
            if self._root is None:
                self._initial_walk()
            self._pull_to_local()
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"mount-sync:{self.mount_dir.name}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop syncing at once; what is pending is never pushed (as when a runtime dies)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def pending(self) -> list[str]:
        """Mount-relative paths written locally whose content Drive does not have yet."""
        with self._lock:
            files, _ = self._scan_local()
            return sorted(
                path
                for path, stat in files.items()
                if path not in self._synced or self._synced[path].stat != stat
            )

    def sync_now(self) -> None:
        """Push every pending local change now, ignoring the lag (a flush without unmount)."""
        with self._lock:
            self._cycle(lag=0.0)

    # -- the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                with self._lock:
                    if self._stop.is_set():
                        return
                    self._cycle(lag=self.lag)
                self.last_error = None
            except Exception as e:  # keep syncing; the error stays readable for diagnosis
                self.last_error = e

    def _cycle(self, *, lag: float) -> None:
        self._pull_changes()
        self._push_local(lag)
        self._pull_to_local()

    # -- Drive -> index ---------------------------------------------------------------------

    def _initial_walk(self) -> None:
        self._root = self._drive.root_id()
        # The token first: whatever changes during the walk is replayed from the feed.
        self._page_token = self._drive.start_page_token()
        for item in self._drive.list_all():
            self._remember(item)
        self._tree_dirty = True

    def _pull_changes(self) -> None:
        assert self._page_token is not None
        changes, self._page_token = self._drive.changes(self._page_token)
        for change in changes:
            item = change.get("file")
            if change.get("removed") or item is None or item.get("trashed"):
                self._remote.pop(change.get("fileId", ""), None)
            else:
                self._remember(item)
            self._tree_dirty = True

    def _remember(self, item: dict) -> None:
        parents = tuple(item.get("parents") or ())
        self._remote[item["id"]] = _Remote(
            item["id"], item.get("name", ""), item.get("mimeType", ""), parents,
            item.get("md5Checksum"), item.get("createdTime", "")
        )  # fmt: skip
        self._tree_dirty = True

    def _rebuild_tree(self) -> None:
        """Map paths to Drive files: one file per name (the oldest), ``list_cap`` per folder."""
        if not self._tree_dirty:
            return
        children: dict[str, dict[str, _Remote]] = {}
        for entry in sorted(self._remote.values(), key=lambda e: (e.created, e.id)):
            for parent in entry.parents[:1]:
                children.setdefault(parent, {}).setdefault(entry.name, entry)
        paths: dict[str, _Remote] = {}
        visible: dict[str, _Remote] = {}
        stack = [(self._root, "", True)]
        while stack:
            folder, prefix, shown = stack.pop()
            names = sorted(children.get(folder, {}))
            for i, name in enumerate(names):
                if not name or "/" in name or name in (".", ".."):
                    continue  # a name the local file system cannot hold
                entry = children[folder][name]
                if entry.is_native:
                    continue  # a Doc or shortcut: no bytes (Colab shows a .gdoc-style stub)
                path = prefix + name
                paths[path] = entry
                child_shown = shown and (self.list_cap is None or i < self.list_cap)
                if child_shown:
                    visible[path] = entry
                if entry.is_folder:
                    stack.append((entry.id, path + "/", child_shown))
        self._paths, self._visible = paths, visible
        self._tree_dirty = False

    # -- local -> Drive -------------------------------------------------------------------

    def _scan_local(self) -> tuple[dict[str, tuple[int, int]], set[str]]:
        files: dict[str, tuple[int, int]] = {}
        dirs: set[str] = set()
        for top, dirnames, filenames in os.walk(self.mount_dir):
            rel = os.path.relpath(top, self.mount_dir)
            prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            dirnames[:] = [d for d in dirnames if not d.startswith(".mount-tmp")]
            for d in dirnames:
                dirs.add(prefix + d)
            for name in filenames:
                if name.startswith(".mount-tmp"):
                    continue
                try:
                    st = os.stat(os.path.join(top, name))
                except FileNotFoundError:
                    continue
                files[prefix + name] = (st.st_mtime_ns, st.st_size)
        return files, dirs

    def _settled(self, path: str, state: object, lag: float) -> bool:
        """Whether ``path`` has shown ``state`` for at least ``lag`` seconds."""
        now = time.monotonic()
        seen = self._quiet_since.get(path)
        if seen is None or seen[0] != state:
            self._quiet_since[path] = (state, now)
            return lag <= 0
        return now - seen[1] >= lag

    def _push_local(self, lag: float) -> None:
        self._rebuild_tree()
        files, dirs = self._scan_local()
        for path in sorted(dirs, key=lambda p: p.count("/")):
            if path not in self._synced and self._settled(path, "dir", lag):
                self._ensure_folder(path)
        for path, stat in sorted(files.items()):
            synced = self._synced.get(path)
            if synced is not None and synced.stat == stat:
                self._quiet_since.pop(path, None)
            elif self._settled(path, stat, lag):
                if lag > 0 and self._stop.is_set():
                    return  # the runtime is dying: what has not gone up yet is lost
                self._upload(path, stat)
        gone = [p for p in self._synced if p not in files and p not in dirs]
        for path in sorted(gone, key=lambda p: -p.count("/")):
            if self._settled(path, "deleted", lag):
                self._delete_remote(path)

    def _ensure_folder(self, path: str) -> str:
        """The Drive id of the folder at ``path``, creating it (and its parents) if needed."""
        if not path:
            assert self._root is not None
            return self._root
        self._rebuild_tree()
        entry = self._paths.get(path)
        if entry is None or not entry.is_folder:
            parent_path, _, name = path.rpartition("/")
            parent = self._ensure_folder(parent_path)
            self._remember(self._drive.create_folder(name, parent))
            self._rebuild_tree()
            entry = self._paths[path]
        self._synced[path] = _Synced(entry.id, None, None)
        self._quiet_since.pop(path, None)
        return entry.id

    def _upload(self, path: str, stat: tuple[int, int]) -> None:
        local = self.mount_dir / path
        try:
            data = local.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return
        md5 = hashlib.md5(data).hexdigest()
        parent_path, _, name = path.rpartition("/")
        synced = self._synced.get(path)
        target = self._paths.get(path)
        file_id = None
        if synced is not None and synced.id in self._remote:
            file_id = synced.id
        elif target is not None and not target.is_folder:
            file_id = target.id
        if file_id is not None and self._remote[file_id].md5 == md5:
            item = None  # same bytes already on Drive (a touch, or a copy both sides made)
        else:
            parent = self._ensure_folder(parent_path)
            item = self._drive.upload(data, name=name, parent=parent, file_id=file_id)
            self._remember(item)
            file_id = item["id"]
        assert file_id is not None
        self._synced[path] = _Synced(file_id, md5, stat)
        self._quiet_since.pop(path, None)

    def _delete_remote(self, path: str) -> None:
        synced = self._synced.pop(path)
        self._quiet_since.pop(path, None)
        entry = self._remote.get(synced.id)
        # Trash only what Drive still holds as we last synced it; a newer Drive version wins.
        if entry is not None and (entry.is_folder or entry.md5 == synced.md5):
            self._drive.trash(synced.id)
            self._remote.pop(synced.id, None)
            self._tree_dirty = True

    # -- Drive -> local -------------------------------------------------------------------

    def _pull_to_local(self) -> None:
        self._rebuild_tree()
        files, dirs = self._scan_local()
        # What was synced and is no longer on Drive at its path (trashed, deleted, moved), or
        # came from Drive and is no longer listed: remove it locally, unless it changed
        # locally since (then it is a new local file, pushed after the lag).
        for path in sorted(self._synced, key=lambda p: -p.count("/")):
            synced = self._synced.get(path)
            if synced is None:
                continue
            shown = self._visible.get(path)
            hidden = synced.pulled and (shown is None or shown.id != synced.id)
            if self._still_at(path, synced) and not hidden:
                continue
            if path not in files and path not in dirs:
                continue  # deleted locally as well; _push_local settles it
            if synced.stat is None:
                self._remove_dir(path)
            elif files.get(path) == synced.stat:
                (self.mount_dir / path).unlink(missing_ok=True)
                del self._synced[path]
                files.pop(path, None)
            else:
                del self._synced[path]
        for path, entry in sorted(self._visible.items()):
            synced = self._synced.get(path)
            if entry.is_folder:
                if path in files:
                    continue  # a local file holds the name
                if path not in dirs:
                    if synced is not None:
                        continue  # deleted locally; _push_local trashes it after the lag
                    (self.mount_dir / path).mkdir(parents=True, exist_ok=True)
                    dirs.add(path)
                if synced is None:
                    self._synced[path] = _Synced(entry.id, None, None, pulled=True)
                continue
            if path in dirs:
                continue
            if synced is None:
                if path not in files:
                    self._download(path, entry)
                elif entry.md5 is not None and self._local_md5(path, files[path]) == entry.md5:
                    self._synced[path] = _Synced(entry.id, entry.md5, files[path], pulled=True)
                continue
            # Drive has new content for the file we hold, and we did not touch it since.
            if synced.id == entry.id and synced.md5 != entry.md5 and files.get(path) == synced.stat:
                self._download(path, entry)

    def _local_md5(self, path: str, stat: tuple[int, int]) -> str | None:
        """The md5 of a local file, remembered per (path, stat) so it is read once."""
        cached = self._md5_cache.get(path)
        if cached is None or cached[0] != stat:
            try:
                digest = hashlib.md5((self.mount_dir / path).read_bytes()).hexdigest()
            except OSError:
                return None
            cached = self._md5_cache[path] = (stat, digest)
        return cached[1]

    def _still_at(self, path: str, synced: _Synced | _Remote) -> bool:
        """Whether the Drive file last synced at ``path`` still lives there (parents too)."""
        entry = self._remote.get(synced.id)
        parent_path, _, name = path.rpartition("/")
        if entry is None or entry.name != name:
            return False
        if not parent_path:
            return self._root in entry.parents
        parent = self._synced.get(parent_path) or self._paths.get(parent_path)
        return (
            parent is not None
            and parent.id in entry.parents
            and self._still_at(parent_path, parent)
        )

    def _download(self, path: str, entry: _Remote) -> None:
        data = self._drive.download(entry.id)
        local = self.mount_dir / path
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.parent / f".mount-tmp-{secrets.token_hex(4)}"
        tmp.write_bytes(data)
        os.replace(tmp, local)
        st = local.stat()
        md5 = entry.md5 or hashlib.md5(data).hexdigest()
        self._synced[path] = _Synced(entry.id, md5, (st.st_mtime_ns, st.st_size), pulled=True)
        self._quiet_since.pop(path, None)

    def _remove_dir(self, path: str) -> None:
        local = self.mount_dir / path
        prefix = path + "/"
        inner = [p for p in self._synced if p.startswith(prefix)]
        if any(p for p in inner if self._synced[p].stat is not None):
            return  # files inside are handled first; come back next round
        try:
            local.rmdir()
        except OSError:
            return  # not empty: something local lives there
        for p in [path, *inner]:
            self._synced.pop(p, None)
