"""The Drive side: one listing of a tree, with Drive's duplicate names resolved once.

Drive lets a folder hold several files (and folders) of one name. Every path here means what
the client's path resolution means (``colab_magics.drive.paths.pick``: a folder first, then
the oldest): files under a duplicate folder that resolution would not pick are
left out, and each path with more than one candidate is recorded in ``duplicates``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from colab_magics.drive import DriveClient, DriveFile, DriveNotFound, listing
from colab_magics.drive.paths import join, pick
from colab_magics.sync.errors import SyncError

BAD_NAMES = ("", ".", "..")


@dataclasses.dataclass
class RemoteTree:
    """``files``/``folders`` by path relative to ``root`` (``None`` when it does not exist)."""

    root: DriveFile | None
    files: dict[str, DriveFile] = dataclasses.field(default_factory=dict)
    folders: dict[str, DriveFile] = dataclasses.field(default_factory=dict)
    duplicates: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    unsafe: dict[str, str] = dataclasses.field(default_factory=dict)
    """Names that cannot be a local file name (``..``, containing ``/``): path -> why."""
    native: dict[str, DriveFile] = dataclasses.field(default_factory=dict)
    """Google Docs, Sheets, Slides and shortcuts by path: no bytes to pull or compare, so
    they are kept out of ``files`` (a push never replaces or deletes them)."""


def drive_parts(client: DriveClient, drive_path: str | os.PathLike[str]) -> tuple[str, ...]:
    try:
        return client.parse(drive_path)
    except ValueError as exc:
        raise SyncError(str(exc)) from None


def lookup(client: DriveClient, parts: tuple[str, ...]) -> DriveFile | None:
    """The folder at ``parts`` (My Drive for ``()``), else the file there, else None.

    A folder wins over a file of the same name, as it does for every other level of a path.
    """
    if not parts:
        return client.stat_folder("")
    try:
        found = client.resolve(join(parts))
    except DriveNotFound:
        return None
    if found.file.is_folder:
        return found.file
    # The client's answer for a last component may come from its cache, which keeps one
    # file per name: ask Drive for every file of that name to see a folder among them.
    parent = lookup(client, parts[:-1])
    if parent is None or not parent.is_folder:
        return found.file
    named = listing.find_named(client.transport, parent.id, parts[-1])
    folders = [f for f in named if f.is_folder]
    return pick(folders) if folders else found.file


def list_tree(client: DriveClient, root: DriveFile | None) -> RemoteTree:
    """Everything under the folder ``root`` (an empty tree for None or a plain file)."""
    tree = RemoteTree(root)
    if root is None or not root.is_folder:
        return tree
    by_path: dict[str, list[DriveFile]] = {}
    for path, file in _walk(client, root):
        if file.name in BAD_NAMES or "/" in file.name or "\0" in file.name:
            tree.unsafe[path] = f"the Drive name {file.name!r} cannot be a local file name"
            continue
        by_path.setdefault(path, []).append(file)
    chosen_folder: dict[str, str] = {"": root.id}
    # Parents before children: a path is kept only under the folder resolution picks.
    for path in sorted(by_path, key=lambda p: p.count("/")):
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        parent_id = chosen_folder.get(parent)
        if parent_id is None:
            continue
        here = [f for f in by_path[path] if parent_id in f.parents]
        if not here:
            continue
        folders = [f for f in here if f.is_folder]
        files = [f for f in here if not f.is_folder and not f.is_native]
        natives = [f for f in here if f.is_native]
        if natives:
            tree.native[path] = pick(natives)
        if folders:
            folder = pick(folders)
            tree.folders[path] = folder
            chosen_folder[path] = folder.id
            _note_duplicates(tree, path, folder, folders)
        if files:
            file = pick(files)
            tree.files[path] = file
            _note_duplicates(tree, path, file, files)
    return tree


def file_tree(
    client: DriveClient, folder: DriveFile | None, parts: tuple[str, ...], name: str
) -> RemoteTree:
    """A tree of just the file ``name`` in ``folder`` (resolved by path, not by listing)."""
    tree = RemoteTree(folder)
    if folder is None:
        return tree
    try:
        found = client.resolve(join((*parts, name)))
    except DriveNotFound:
        return tree
    if found.file.is_native:
        tree.native[name] = found.file
    elif not found.file.is_folder:
        tree.files[name] = client.file(found.file.id)  # fresh size and md5, not a cached copy
    for dup_path, same in found.duplicates.items():
        if dup_path == join((*parts, name)):
            _note_duplicates(tree, name, found.file, list(same))
    return tree


def add_own_writes(client: DriveClient, tree: RemoteTree, dirs: set[str], files: set[str]) -> None:
    """Add what this client itself wrote under ``tree`` that the listing does not show yet.

    Drive's listing lags behind writes (seconds); a re-run right after a push would otherwise
    send everything again, as new duplicates. The client remembers what it created, by
    ``(parent id, name)``, so this costs no request.
    """
    if tree.root is None:
        return
    cache = client.resolver.cache
    for path in sorted(dirs | files, key=lambda p: p.count("/")):
        parent, _, name = path.rpartition("/")
        if parent and parent not in tree.folders:
            continue
        parent_id = tree.folders[parent].id if parent else tree.root.id
        cached = cache.get(parent_id, name)
        if cached is None:
            continue
        if path in dirs and cached.is_folder and path not in tree.folders:
            tree.folders[path] = cached
        elif path in files and not cached.is_folder and path not in tree.files:
            tree.files[path] = cached


def _note_duplicates(tree: RemoteTree, path: str, chosen: DriveFile, same: list[DriveFile]) -> None:
    if len(same) > 1:
        tree.duplicates[path] = [chosen.id] + sorted(f.id for f in same if f.id != chosen.id)


def _walk(client: DriveClient, root: DriveFile) -> Any:
    """The client's tree walk, rooted at a folder we already hold (no second resolution)."""
    return listing.walk(client.transport, root.id, workers=client.workers)
