"""The emulated Drive's state: SQLite metadata (ROOT/drive.sqlite) and content blobs.

Every Drive rule that needs a transaction lives here: parents must exist, trash cascades to
descendants, deletes take descendants with them, quota is checked against the running usage,
and every change is appended to the changes log. One connection guarded by a lock serves all
server threads; WAL keeps readers cheap, and content I/O happens outside the lock.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from colab_magics.emulator import tree
from colab_magics.emulator.blobs import Blob, BlobStore
from colab_magics.emulator.errors import (
    DriveError,
    bad_request,
    invalid,
    not_found,
    quota_exceeded,
)
from colab_magics.emulator.records import (
    COLUMNS,
    EMPTY_MD5,
    EMPTY_SHA1,
    EMPTY_SHA256,
    FileChanges,
    FileRecord,
    NewFile,
    new_file_id,
    now_rfc3339,
)
from colab_magics.emulator.schema import FOLDER_MIME, SCHEMA
from colab_magics.emulator.settings import EmulatorSettings

_ID_RE = re.compile(r"[A-Za-z0-9_-]{10,100}")

_EXTRA_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id TEXT NOT NULL,
    time    TEXT NOT NULL,
    removed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS upload_sessions (
    id          TEXT PRIMARY KEY,
    file_id     TEXT,              -- the file whose content is replaced; NULL for a create
    metadata    TEXT NOT NULL,     -- JSON body of the initiation request
    params      TEXT NOT NULL,     -- JSON query parameters of the initiation request
    mime_type   TEXT,              -- X-Upload-Content-Type
    total       INTEGER,           -- declared total size, NULL while unknown
    received    INTEGER NOT NULL DEFAULT 0,
    created     REAL NOT NULL,
    result_id   TEXT               -- the file made when the upload completed
);
CREATE INDEX IF NOT EXISTS files_by_trash_size ON files(trashed, size);
-- files.list orders by modifiedTime desc unless told otherwise; with these indexes a page is
-- read in order instead of sorting every match.
CREATE INDEX IF NOT EXISTS files_by_modified ON files(modified_time DESC, id);
CREATE INDEX IF NOT EXISTS files_by_name_id ON files(name, id);
-- `name = 'x'` matches without regard to case, as Drive's does: the query compares lower(name).
CREATE INDEX IF NOT EXISTS files_by_lower_name ON files(lower(name));
"""


class Store:
    """The Drive of one emulator: files, parents, properties, changes, sessions, blobs."""

    def __init__(self, root: str | Path, settings: EmulatorSettings) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.blobs = BlobStore(self.root)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(
            self.root / "drive.sqlite", check_same_thread=False, isolation_level=None
        )
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA + _EXTRA_SCHEMA)
        _add_missing_columns(self.db)
        self.root_id = self._ensure_root()
        self._collect_orphan_blobs()

    def close(self) -> None:
        with self.lock:
            self.db.close()

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, serialized with every other use of the connection."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _ensure_root(self) -> str:
        with self.tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'root_id'").fetchone()
            if row:
                return row["value"]
            root_id = new_file_id()
            now = now_rfc3339()
            db.execute(
                "INSERT INTO files (id, name, mime_type, created_time, modified_time, listed_at)"
                " VALUES (?, 'My Drive', ?, ?, ?, 0)",
                (root_id, FOLDER_MIME, now, now),
            )
            db.execute("INSERT INTO meta (key, value) VALUES ('root_id', ?)", (root_id,))
            return root_id

    def _collect_orphan_blobs(self) -> None:
        # A process killed between moving content in and committing leaves a blob nobody owns.
        with self.lock:
            owned = {r[0] for r in self.db.execute("SELECT blob FROM files WHERE blob IS NOT NULL")}
        for path in self.blobs.dir.iterdir():
            if path.name not in owned:
                path.unlink(missing_ok=True)

    def resolve(self, file_id: str) -> str:
        return self.root_id if file_id == "root" else file_id

    # -- reading --------------------------------------------------------------------------

    def get(self, file_id: str) -> FileRecord | None:
        records = self.get_many([self.resolve(file_id)])
        return records[0] if records else None

    def require(self, file_id: str) -> FileRecord:
        record = self.get(file_id)
        if record is None:
            raise not_found(file_id)
        return record

    def get_many(self, ids: Sequence[str]) -> list[FileRecord]:
        """Records for ``ids`` in the same order; missing ids are skipped."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self.lock:
            rows = self.db.execute(f"SELECT * FROM files WHERE id IN ({marks})", ids).fetchall()
            records = {row["id"]: FileRecord(**{c: row[c] for c in COLUMNS}) for row in rows}
            for table, attr in (("app_properties", "app_properties"), ("properties", "properties")):
                for row in self.db.execute(
                    f"SELECT file_id, key, value FROM {table} WHERE file_id IN ({marks})", ids
                ):
                    getattr(records[row["file_id"]], attr)[row["key"]] = row["value"]
            for row in self.db.execute(
                f"SELECT file_id, parent_id FROM parents WHERE file_id IN ({marks}) ORDER BY rowid",
                ids,
            ):
                records[row["file_id"]].parents.append(row["parent_id"])
        for record in records.values():
            record.trashed = bool(record.trashed)
            record.explicitly_trashed = bool(record.explicitly_trashed)
            record.starred = bool(record.starred)
        return [records[i] for i in ids if i in records]

    def search(
        self, where: str, params: Sequence[Any], order_by: str, limit: int, offset: int
    ) -> list[FileRecord]:
        """Files matching ``where`` (as compiled from ``q``) that the listing index shows."""
        sql = (
            f"SELECT files.id FROM files WHERE ({where}) AND files.listed_at <= ?"
            f" AND files.id != ? ORDER BY {order_by} LIMIT ? OFFSET ?"
        )
        with self.lock:
            ids = [
                row[0]
                for row in self.db.execute(sql, [*params, time.time(), self.root_id, limit, offset])
            ]
        return self.get_many(ids)

    def usage(self) -> tuple[int, int]:
        """Bytes used in all (trash included), and bytes in the trash."""
        with self.lock:
            row = self.db.execute(
                "SELECT coalesce(SUM(size), 0), coalesce(SUM(CASE WHEN trashed THEN size END), 0)"
                " FROM files"
            ).fetchone()
        return int(row[0]), int(row[1])

    def _checksums(self, content: Blob | None) -> tuple[str, str | None, str | None]:
        """md5, sha1 and sha256 of new content as the file will keep them."""
        if content is None:
            md5, sha1, sha256 = EMPTY_MD5, EMPTY_SHA1, EMPTY_SHA256
        else:
            md5, sha1, sha256 = content.md5, content.sha1, content.sha256
        if self.settings.md5_only:
            return md5, None, None
        return md5, sha1, sha256

    def check_quota(self, added: int) -> None:
        """Raise 403 ``storageQuotaExceeded`` if ``added`` more bytes would pass the limit."""
        limit = self.settings.quota_bytes
        if limit is not None and added > 0 and self.usage()[0] + added > limit:
            raise quota_exceeded()

    # -- writing --------------------------------------------------------------------------

    def create(self, spec: NewFile, content: Blob | None) -> FileRecord:
        """A new file (or folder) with ``content``; metadata-only files are empty."""
        file_id = spec.file_id or new_file_id()
        if spec.file_id is not None and not _ID_RE.fullmatch(spec.file_id):
            raise invalid("The provided file ID is not usable.", location="file.id")
        is_folder = spec.mime_type == FOLDER_MIME
        if is_folder and content is not None and content.size:
            raise invalid("A folder cannot have content.", location="uploadType")
        now = now_rfc3339()
        blob_name = None
        try:
            with self.tx() as db:
                if db.execute("SELECT 1 FROM files WHERE id = ?", (file_id,)).fetchone():
                    raise DriveError(
                        409, "fileIdInUse", "A file already exists with the provided ID."
                    )
                parents = [self.resolve(p) for p in (spec.parents or [self.root_id])]
                self._check_parents(db, parents)
                if len(parents) > 1:
                    raise _too_many_parents()
                size = None if is_folder else (content.size if content else 0)
                self.check_quota(size or 0)
                if content is not None and not is_folder:
                    blob_name = self.blobs.adopt(content)
                db.execute(
                    "INSERT INTO files (id, name, mime_type, description, size, md5, sha1, sha256,"
                    " blob, created_time, modified_time, starred, original_filename, listed_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        file_id,
                        spec.name,
                        spec.mime_type,
                        spec.description,
                        size,
                        *(self._checksums(content) if not is_folder else (None, None, None)),
                        blob_name,
                        spec.created_time or now,
                        spec.modified_time or now,
                        int(spec.starred),
                        spec.original_filename,
                        self._listed_at(),
                    ),
                )
                db.executemany(
                    "INSERT INTO parents (file_id, parent_id) VALUES (?, ?)",
                    [(file_id, p) for p in parents],
                )
                self._set_props(db, file_id, "app_properties", spec.app_properties)
                self._set_props(db, file_id, "properties", spec.properties)
                tree.inherit_trash(db, file_id, now)
                self._log(db, [file_id])
        except BaseException:
            if blob_name is not None:
                self.blobs.remove(blob_name)
            elif content is not None:
                content.path.unlink(missing_ok=True)
            raise
        return self.require(file_id)

    def update(self, file_id: str, changes: FileChanges, content: Blob | None) -> FileRecord:
        """Apply metadata ``changes`` and, when given, replace the content."""
        new_blob = old_blob = None
        now = now_rfc3339()
        try:
            with self.tx() as db:
                # Read inside the transaction: concurrent updates must not lose each other.
                record = self.require(file_id)
                file_id, old_blob = record.id, record.blob
                cols: dict[str, Any] = {}
                if content is not None:
                    if record.is_folder:
                        raise invalid("A folder cannot have content.", location="uploadType")
                    self.check_quota(content.size - (record.size or 0))
                    new_blob = self.blobs.adopt(content)
                    md5, sha1, sha256 = self._checksums(content)
                    cols.update(
                        size=content.size,
                        md5=md5,
                        sha1=sha1,
                        sha256=sha256,
                        blob=new_blob,
                        modified_time=now,
                    )
                if changes.name is not None and changes.name != record.name:
                    cols.update(name=changes.name, modified_time=now, listed_at=self._listed_at())
                if changes.mime_type is not None:
                    if (changes.mime_type == FOLDER_MIME) != record.is_folder:
                        raise invalid(
                            "The mimeType of a folder cannot change.", location="mimeType"
                        )
                    cols["mime_type"] = changes.mime_type
                for attr in ("description", "modified_time", "original_filename"):
                    if getattr(changes, attr) is not None:
                        cols[attr] = getattr(changes, attr)
                if changes.starred is not None:
                    cols["starred"] = int(changes.starred)
                touched = [file_id]
                if changes.add_parents or changes.remove_parents:
                    self._move(db, record, changes)
                    cols["listed_at"] = self._listed_at()
                    if changes.trashed is None:
                        touched += tree.inherit_trash(db, file_id, now)
                self._set_props(db, file_id, "app_properties", changes.app_properties)
                self._set_props(db, file_id, "properties", changes.properties)
                if changes.trashed is not None and changes.trashed != record.trashed:
                    touched += self._set_trashed(db, record, changes.trashed, now)
                cols["version"] = record.version + 1
                assigns = ", ".join(f"{c} = ?" for c in cols)
                db.execute(f"UPDATE files SET {assigns} WHERE id = ?", [*cols.values(), file_id])
                self._log(db, touched)
        except BaseException:
            if new_blob is not None:
                self.blobs.remove(new_blob)
            elif content is not None:
                content.path.unlink(missing_ok=True)
            raise
        if new_blob is not None:
            self.blobs.remove(old_blob)
        return self.require(file_id)

    def copy(self, file_id: str, spec: NewFile) -> FileRecord:
        """A new file with the content of ``file_id`` and the metadata in ``spec``."""
        with self.lock:  # the source's content must not be replaced while it is duplicated
            source = self.require(file_id)
            if source.is_folder:
                raise DriveError(403, "fileNotCopyable", "Folders cannot be copied.")
            blob = None
            if source.blob:
                duplicate = self.blobs.path(self.blobs.duplicate(source.blob))
                blob = Blob(
                    duplicate, source.size or 0, source.md5 or EMPTY_MD5, source.sha1, source.sha256
                )
        if spec.parents is None:
            spec.parents = source.parents or None
        return self.create(spec, blob)

    def delete(self, file_id: str) -> None:
        """Delete ``file_id`` and, for a folder, everything under it; nothing goes to trash."""
        with self.tx() as db:
            record = self.require(file_id)
            if record.id == self.root_id:
                raise DriveError(403, "cannotDeleteRoot", "The root folder cannot be deleted.")
            ids = [record.id, *self._descendants(db, record.id)]
            blobs = self._remove(db, ids)
        for name in blobs:
            self.blobs.remove(name)

    def empty_trash(self) -> None:
        """Delete every trashed file for good (descendants of trashed folders too)."""
        with self.tx() as db:
            top = [r[0] for r in db.execute("SELECT id FROM files WHERE trashed = 1")]
            ids = set(top)
            for file_id in top:
                ids.update(self._descendants(db, file_id))
            blobs = self._remove(db, sorted(ids))
        for name in blobs:
            self.blobs.remove(name)

    # -- changes --------------------------------------------------------------------------

    def start_page_token(self) -> int:
        with self.lock:
            row = self.db.execute("SELECT coalesce(MAX(seq), 0) FROM changes").fetchone()
        return int(row[0]) + 1

    def changes_since(self, seq: int, limit: int) -> list[sqlite3.Row]:
        with self.lock:
            return self.db.execute(
                "SELECT seq, file_id, time, removed FROM changes WHERE seq >= ?"
                " ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()

    # -- helpers --------------------------------------------------------------------------

    def _listed_at(self) -> float:
        return time.time() + max(0.0, float(self.settings.listing_lag or 0.0))

    def _check_parents(self, db: sqlite3.Connection, parents: Sequence[str]) -> None:
        for parent in parents:
            row = db.execute("SELECT mime_type FROM files WHERE id = ?", (parent,)).fetchone()
            if row is None:
                raise not_found(parent)
            if row["mime_type"] != FOLDER_MIME:
                raise DriveError(
                    400, "invalid", "The specified parent is not a folder.", location="parents"
                )

    def _move(self, db: sqlite3.Connection, record: FileRecord, changes: FileChanges) -> None:
        add = [self.resolve(p) for p in changes.add_parents]
        remove = {self.resolve(p) for p in changes.remove_parents}
        self._check_parents(db, add)
        if record.is_folder:
            below = set(self._descendants(db, record.id)) | {record.id}
            if below.intersection(add):
                raise bad_request(
                    "A folder cannot be moved into itself or below itself.", location="addParents"
                )
        new = [p for p in record.parents if p not in remove]
        new += [p for p in add if p not in new]
        if len(new) > max(1, len(record.parents)):
            raise _too_many_parents()
        db.execute("DELETE FROM parents WHERE file_id = ?", (record.id,))
        db.executemany(
            "INSERT INTO parents (file_id, parent_id) VALUES (?, ?)", [(record.id, p) for p in new]
        )

    def _set_trashed(
        self, db: sqlite3.Connection, record: FileRecord, trashed: bool, now: str
    ) -> list[str]:
        if record.id == self.root_id:
            raise DriveError(403, "cannotModifyRoot", "The root folder cannot be trashed.")
        return tree.set_trashed(db, record.id, trashed, now)

    def _descendants(self, db: sqlite3.Connection, folder_id: str) -> list[str]:
        return tree.descendants(db, folder_id)

    def _remove(self, db: sqlite3.Connection, ids: Sequence[str]) -> list[str]:
        """Delete rows of ``ids``; returns their blob names to unlink after commit."""
        blobs: list[str] = []
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            blobs += [
                r[0]
                for r in db.execute(
                    f"SELECT blob FROM files WHERE id IN ({marks}) AND blob IS NOT NULL", part
                )
            ]
            db.execute(f"DELETE FROM files WHERE id IN ({marks})", part)
        self._log(db, ids, removed=True)
        return blobs

    def _set_props(
        self, db: sqlite3.Connection, file_id: str, table: str, props: dict[str, str | None]
    ) -> None:
        for key, value in props.items():
            if value is None:
                db.execute(f"DELETE FROM {table} WHERE file_id = ? AND key = ?", (file_id, key))
            else:
                db.execute(
                    f"INSERT OR REPLACE INTO {table} (file_id, key, value) VALUES (?, ?, ?)",
                    (file_id, key, value),
                )

    def _log(self, db: sqlite3.Connection, ids: Sequence[str], *, removed: bool = False) -> None:
        now = now_rfc3339()
        db.executemany(
            "INSERT INTO changes (file_id, time, removed) VALUES (?, ?, ?)",
            [(i, now, int(removed)) for i in ids],
        )


def _too_many_parents() -> DriveError:
    return DriveError(403, "cannotAddParent", "Increasing the number of parents is not allowed.")


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """Open a store an older emulator made: columns added since start out NULL, like the
    checksums of a file Drive stored before it kept them."""
    have = {row[1] for row in db.execute("PRAGMA table_info(files)")}
    if "sha1" not in have:
        db.execute("ALTER TABLE files ADD COLUMN sha1 TEXT")
