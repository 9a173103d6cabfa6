"""Listing one folder costs what the folder holds, not what the whole Drive holds.

Drive answers ``'<id>' in parents`` from an index of the folder's children
(https://developers.google.com/drive/api/guides/search-files); the emulator's SQL must too, or
a first check of 341 folders of a 340,000-file Drive scans all of it 341 times.
"""

from __future__ import annotations

from colab_magics.emulator.query import compile_order_by, compile_query


def _plan(store, q: str) -> list[str]:
    where, params = compile_query(q, root_id=store.root_id)
    sql = (
        f"SELECT files.id FROM files WHERE ({where}) AND files.listed_at <= ?"
        f" AND files.id != ? ORDER BY {compile_order_by(None)} LIMIT ? OFFSET ?"
    )
    rows = store.db.execute("EXPLAIN QUERY PLAN " + sql, [*params, 0.0, "x", 1, 0])
    return [row[3] for row in rows]


def test_children_of_a_folder_are_found_through_the_parent_index(emulator):
    store = emulator.app.store
    for q in (
        "'abc' in parents and trashed = false",
        "'abc' in parents and trashed = false and mimeType = 'application/vnd.google-apps.folder'",
        "trashed = false and 'abc' in parents",
    ):
        plan = _plan(store, q)
        assert any("parents_by_parent" in step for step in plan), (q, plan)
        # Files are then fetched by id; never a walk over all (untrashed) files.
        assert not any(step.startswith("SCAN files") for step in plan), (q, plan)
        assert not any("files_by_trash" in step for step in plan), (q, plan)
