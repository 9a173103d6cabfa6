"""Resumable upload sessions: persisted in SQLite, their bytes in ROOT/uploads/<session id>.

Like Drive, a session keeps only whole 256 KiB units of a chunk that does not end the upload;
the ``Range`` of the 308 answer is the one place a client learns how much was kept.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from colab_magics.emulator.blobs import Blob, ContentHashes, hash_file
from colab_magics.emulator.store import Store
from colab_magics.emulator.wire import DISCONNECTED

UNIT = 256 * 1024
"""Drive keeps non-final chunks in multiples of this many bytes."""
SESSION_TTL = 7 * 24 * 3600.0
"""Drive expires resumable sessions after a week."""


@dataclasses.dataclass
class Session:
    id: str
    file_id: str | None
    metadata: dict[str, Any]
    params: dict[str, str]
    mime_type: str | None
    total: int | None
    received: int
    created: float
    result_id: str | None


@dataclasses.dataclass
class _HashState:
    """Hashes of the first ``pos`` bytes of a session, kept in memory between chunks."""

    pos: int
    hashes: ContentHashes


class Sessions:
    """Create, look up, feed and finish resumable upload sessions."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.dir = store.root / "uploads"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._hashes: dict[str, _HashState] = {}
        self._collect_leftovers()

    def _collect_leftovers(self) -> None:
        """Forget expired sessions and delete bytes no session owns."""
        with self.store.tx() as db:
            db.execute(
                "DELETE FROM upload_sessions WHERE created < ?", (time.time() - SESSION_TTL,)
            )
            live = {
                r[0] for r in db.execute("SELECT id FROM upload_sessions WHERE result_id IS NULL")
            }
        for path in self.dir.iterdir():
            if path.name not in live:
                path.unlink(missing_ok=True)

    def path(self, session_id: str) -> Path:
        return self.dir / session_id

    def lock(self, session_id: str) -> threading.Lock:
        """The lock that serializes chunks of one session."""
        with self._guard:
            return self._locks.setdefault(session_id, threading.Lock())

    def create(
        self,
        *,
        file_id: str | None,
        metadata: dict[str, Any],
        params: dict[str, str],
        mime_type: str | None,
        total: int | None,
    ) -> Session:
        session = Session(
            id=secrets.token_urlsafe(32),
            file_id=file_id,
            metadata=metadata,
            params=params,
            mime_type=mime_type,
            total=total,
            received=0,
            created=time.time(),
            result_id=None,
        )
        self.path(session.id).touch()
        with self.store.tx() as db:
            db.execute(
                "INSERT INTO upload_sessions (id, file_id, metadata, params, mime_type, total,"
                " received, created) VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                (
                    session.id,
                    file_id,
                    json.dumps(metadata),
                    json.dumps(params),
                    mime_type,
                    total,
                    session.created,
                ),
            )
        return session

    def get(self, session_id: str) -> Session | None:
        """The session, or ``None`` when unknown or expired."""
        with self.store.lock:
            row = self.store.db.execute(
                "SELECT * FROM upload_sessions WHERE id = ?", (session_id,)
            ).fetchone()
        if row is None:
            return None
        session = Session(
            id=row["id"],
            file_id=row["file_id"],
            metadata=json.loads(row["metadata"]),
            params=json.loads(row["params"]),
            mime_type=row["mime_type"],
            total=row["total"],
            received=row["received"],
            created=row["created"],
            result_id=row["result_id"],
        )
        if time.time() - session.created > SESSION_TTL:
            self.drop(session.id)
            return None
        return session

    def receive(
        self, session: Session, first: int, data: Iterable[bytes], *, final_total: int | None
    ) -> bool:
        """Append the chunk that starts at byte ``first``; returns whether it arrived whole.

        Bytes the session already holds are skipped; ``final_total`` is the upload's size when
        this chunk claims to end it. A chunk that does not end the upload, or that arrived only
        in part (a cut connection), is kept only up to its last whole 256 KiB unit. The caller
        holds ``lock(session.id)``.
        """
        start = session.received
        state = self._hash_state(session)
        # Out of the cache while it is being fed: an error half way must not leave it stale.
        self._hashes.pop(session.id, None)
        skip = start - first
        pos = start
        snapshot = (pos, state.hashes.copy())
        whole = True
        with open(self.path(session.id), "r+b") as f:
            f.seek(start)
            f.truncate()
            try:
                for block in data:
                    view = memoryview(block)
                    if skip > 0:
                        dropped = min(skip, len(view))
                        skip -= dropped
                        view = view[dropped:]
                    while view:
                        # Write up to the next unit boundary, so hashes can stop exactly there.
                        room = UNIT - pos % UNIT
                        piece, view = view[:room], view[room:]
                        f.write(piece)
                        state.hashes.update(piece)
                        pos += len(piece)
                        if pos % UNIT == 0:
                            snapshot = (pos, state.hashes.copy())
            except DISCONNECTED:
                # A cut connection: what arrived counts, in whole units, as on Drive.
                whole = False
            complete = whole and final_total is not None and pos == final_total
            if not complete and pos != snapshot[0]:
                pos, state.hashes = snapshot
                f.truncate(pos)
            state.pos = pos
        self._hashes[session.id] = state
        with self.store.tx() as db:
            db.execute(
                "UPDATE upload_sessions SET received = ?, total = coalesce(?, total) WHERE id = ?",
                (pos, final_total if complete else None, session.id),
            )
        session.received = pos
        if complete:
            session.total = final_total
        return complete

    def content(self, session: Session) -> Blob:
        """The session's bytes as a blob for the store to adopt (the session file moves)."""
        state = self._hash_state(session)
        return state.hashes.blob(self.path(session.id), session.received)

    def complete(self, session: Session, result_id: str) -> None:
        """Record the file the upload made; a later status query answers with it."""
        with self.store.tx() as db:
            db.execute(
                "UPDATE upload_sessions SET result_id = ? WHERE id = ?", (result_id, session.id)
            )
        session.result_id = result_id
        self._hashes.pop(session.id, None)
        self.path(session.id).unlink(missing_ok=True)

    def drop(self, session_id: str) -> None:
        with self.store.tx() as db:
            db.execute("DELETE FROM upload_sessions WHERE id = ?", (session_id,))
        self._hashes.pop(session_id, None)
        self.path(session_id).unlink(missing_ok=True)

    def _hash_state(self, session: Session) -> _HashState:
        state = self._hashes.get(session.id)
        if state is None or state.pos != session.received:
            # After a restart (hash objects cannot be saved) hash what the file holds.
            state = _HashState(session.received, hash_file(self.path(session.id), session.received))
            self._hashes[session.id] = state
        return state
