"""Listing: paged folder listings, a parallel tree walk, and an index kept current by changes.

Every listing asks for ``pageSize=1000`` (Drive's maximum) and only :data:`FILE_FIELDS`.
A tree walk lists the folders of one level in parallel threads (each with its own Http).
:class:`TreeIndex` holds ``path -> entry`` for a tree and refreshes through ``changes.list``
rather than listing everything again.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from colab_magics.drive.errors import DriveError
from colab_magics.drive.model import FILE_FIELDS, FOLDER_MIME, LIST_FIELDS, DriveFile
from colab_magics.drive.paths import pick, query_literal
from colab_magics.drive.transport import Transport

PAGE_SIZE = 1000
LIST_RESTARTS = 3
CHANGE_FIELDS = f"nextPageToken,newStartPageToken,changes(fileId,removed,file({FILE_FIELDS}))"


def list_query(
    transport: Transport, q: str, *, order_by: str | None = None, page_size: int = PAGE_SIZE
) -> list[DriveFile]:
    """All files matching ``q``, every page.

    A page may hold fewer than ``page_size`` files (even none) with more to come: only a
    missing ``nextPageToken`` ends the listing. A token refused because the listing changed
    under it (400 ``invalid``) starts the listing again, a few times at most.
    """
    files = transport.files
    out: list[DriveFile] = []
    token: str | None = None
    restarts = 0
    while True:
        kw: dict[str, Any] = {"q": q, "pageSize": page_size, "fields": LIST_FIELDS}
        if token:
            kw["pageToken"] = token
        if order_by:
            kw["orderBy"] = order_by
        try:
            page = transport.execute(lambda kw=kw: files.list(**kw), what=q)
        except DriveError as exc:
            if token and exc.status == 400 and restarts < LIST_RESTARTS:
                restarts += 1  # the page token died with the listing's shape: list again
                out, token = [], None
                continue
            raise
        out.extend(DriveFile.from_api(f) for f in page.get("files", []))
        token = page.get("nextPageToken")
        if not token:
            return out


def list_children(
    transport: Transport, folder_id: str, *, page_size: int = PAGE_SIZE
) -> list[DriveFile]:
    """Untrashed children of one folder."""
    q = f"{query_literal(folder_id)} in parents and trashed = false"
    return list_query(transport, q, page_size=page_size)


def find_named(transport: Transport, parent_id: str, name: str) -> list[DriveFile]:
    """Untrashed children of ``parent_id`` called exactly ``name``.

    Drive's ``name =`` ignores case ("model.ckpt" also finds "Model.ckpt"; rclone's Drive
    backend re-checks every result for this reason), so the answer is filtered here: names
    that differ only in case are different files.
    """
    q = (
        f"{query_literal(parent_id)} in parents and name = {query_literal(name)} "
        "and trashed = false"
    )
    return [f for f in list_query(transport, q) if f.name == name]


@dataclasses.dataclass(frozen=True)
class Entry:
    """One indexed file: ``path`` is relative to the indexed tree's root."""

    id: str
    path: str
    size: int | None
    md5: str | None
    mtime: str
    is_folder: bool


def walk(
    transport: Transport, root_id: str, *, workers: int = 8
) -> Iterator[tuple[str, DriveFile]]:
    """``(relative_path, file)`` for everything under ``root_id``, listing folders of each
    level in parallel. Duplicate names in a folder all appear, under the same path."""
    level: list[tuple[str, str]] = [("", root_id)]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drive-walk") as pool:
        while level:
            listings = pool.map(lambda item: list_children(transport, item[1]), level)
            nxt: list[tuple[str, str]] = []
            for (prefix, _), children in zip(level, listings, strict=True):
                for child in children:
                    path = posixpath.join(prefix, child.name) if prefix else child.name
                    yield path, child
                    if child.is_folder:
                        nxt.append((path, child.id))
            level = nxt


class TreeIndex:
    """``path -> Entry`` for one Drive tree; :meth:`refresh` applies ``changes.list``.

    Where names repeat, the path maps to the file that resolution would pick (a folder first,
    then the oldest).
    """

    def __init__(self, transport: Transport, root_id: str, *, workers: int = 8) -> None:
        self.transport = transport
        self.root_id = root_id
        self.workers = workers
        self._files: dict[str, DriveFile] = {}
        self._token: str | None = None
        self.build()

    def build(self) -> None:
        """List the whole tree (the changes token is taken first, so nothing slips between)."""
        self._token = start_page_token(self.transport)
        self._files = {f.id: f for _, f in walk(self.transport, self.root_id, workers=self.workers)}

    def refresh(self) -> int:
        """Apply the changes since the last build or refresh; returns how many were seen."""
        changes, self._token = list_changes(self.transport, self._token or "")
        for file_id, file in changes:
            if file is None or file.trashed:
                self._files.pop(file_id, None)
            else:
                self._files[file_id] = file
        self._prune()
        return len(changes)

    def _prune(self) -> None:
        """Drop files no longer under the root (moved out, or under a removed folder)."""
        keep: dict[str, DriveFile] = {}
        children: dict[str, list[DriveFile]] = {}
        for f in self._files.values():
            for p in f.parents:
                children.setdefault(p, []).append(f)
        stack = [self.root_id]
        while stack:
            for child in children.get(stack.pop(), []):
                if child.id not in keep:
                    keep[child.id] = child
                    if child.mime_type == FOLDER_MIME:
                        stack.append(child.id)
        self._files = keep

    def entries(self) -> dict[str, Entry]:
        """The index: relative path -> entry."""
        by_parent: dict[str, list[DriveFile]] = {}
        for f in self._files.values():
            for p in f.parents:
                by_parent.setdefault(p, []).append(f)
        out: dict[str, Entry] = {}
        stack = [(self.root_id, "")]
        while stack:
            folder_id, prefix = stack.pop()
            named: dict[str, list[DriveFile]] = {}
            for f in by_parent.get(folder_id, []):
                named.setdefault(f.name, []).append(f)
            for name, same in named.items():
                f = pick(same)
                path = posixpath.join(prefix, name) if prefix else name
                out[path] = Entry(f.id, path, f.size, f.md5, f.modified_time, f.is_folder)
                if f.is_folder:
                    stack.append((f.id, path))
        return out


def start_page_token(transport: Transport) -> str:
    changes = transport.changes
    return transport.execute(lambda: changes.getStartPageToken())["startPageToken"]


def list_changes(
    transport: Transport, token: str
) -> tuple[list[tuple[str, DriveFile | None]], str]:
    """Changes since ``token`` as ``(file_id, file or None if removed)``, and the next token."""
    changes = transport.changes
    out: list[tuple[str, DriveFile | None]] = []
    while True:
        page = transport.execute(
            lambda t=token: changes.list(pageToken=t, pageSize=PAGE_SIZE, fields=CHANGE_FIELDS),
            what="changes",
        )
        for c in page.get("changes", []):
            file = None if c.get("removed") or "file" not in c else DriveFile.from_api(c["file"])
            out.append((c["fileId"], file))
        if page.get("newStartPageToken"):
            return out, page["newStartPageToken"]
        token = page["nextPageToken"]
