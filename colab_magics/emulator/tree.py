"""The folder tree in SQL: descendants, and the trashed state that flows down it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence


def descendants(db: sqlite3.Connection, folder_id: str) -> list[str]:
    """Every file below ``folder_id``, at any depth."""
    rows = db.execute(
        "WITH RECURSIVE below(id) AS ("
        " SELECT file_id FROM parents WHERE parent_id = ?"
        " UNION SELECT parents.file_id FROM parents JOIN below ON parents.parent_id = below.id"
        ") SELECT id FROM below",
        (folder_id,),
    )
    return [r[0] for r in rows]


def set_trashed(db: sqlite3.Connection, file_id: str, trashed: bool, now: str) -> list[str]:
    """Trash or restore ``file_id`` and its descendants; returns the descendants touched."""
    below = descendants(db, file_id)
    if trashed:
        db.execute(
            "UPDATE files SET trashed = 1, explicitly_trashed = 1, trashed_time = ? WHERE id = ?",
            (now, file_id),
        )
        touched = _update_where(
            db,
            "trashed = 1, explicitly_trashed = 0, trashed_time = ?",
            (now,),
            "trashed = 0",
            below,
        )
    else:
        db.execute(
            "UPDATE files SET trashed = 0, explicitly_trashed = 0, trashed_time = NULL"
            " WHERE id = ?",
            (file_id,),
        )
        # Only what went to the trash with the folder comes back with it.
        touched = _update_where(
            db,
            "trashed = 0, trashed_time = NULL",
            (),
            "trashed = 1 AND explicitly_trashed = 0",
            below,
        )
    return touched


def inherit_trash(db: sqlite3.Connection, file_id: str, now: str) -> list[str]:
    """Make ``file_id`` and what is below it trashed exactly when it, or a folder above
    it, was trashed explicitly (``trashed``: "explicitly or from a trashed parent folder",
    the files resource). Returns the ids below ``file_id`` whose state changed."""
    row = db.execute(
        "SELECT coalesce(MAX(files.trashed), 0) FROM parents JOIN files"
        " ON files.id = parents.parent_id WHERE parents.file_id = ?",
        (file_id,),
    ).fetchone()
    touched: list[str] = []
    level = [(file_id, bool(row[0]))]
    while level:
        nxt = []
        for node, from_above in level:
            state = db.execute(
                "SELECT trashed, explicitly_trashed FROM files WHERE id = ?", (node,)
            ).fetchone()
            trashed = bool(state["explicitly_trashed"]) or from_above
            if trashed != bool(state["trashed"]):
                db.execute(
                    "UPDATE files SET trashed = ?, trashed_time = ? WHERE id = ?",
                    (int(trashed), now if trashed else None, node),
                )
                if node != file_id:
                    touched.append(node)
            children = db.execute("SELECT file_id FROM parents WHERE parent_id = ?", (node,))
            nxt += [(child[0], trashed) for child in children]
        level = nxt
    return touched


def _update_where(
    db: sqlite3.Connection, assign: str, params: tuple, condition: str, ids: Sequence[str]
) -> list[str]:
    """``UPDATE files SET assign`` on those of ``ids`` meeting ``condition``; returns them."""
    changed: list[str] = []
    for i in range(0, len(ids), 500):
        part = list(ids[i : i + 500])
        where = f"{condition} AND id IN ({','.join('?' * len(part))})"
        changed += [r[0] for r in db.execute(f"SELECT id FROM files WHERE {where}", part)]
        db.execute(f"UPDATE files SET {assign} WHERE {where}", [*params, *part])
    return changed
