"""The emulator's SQLite schema: the one contract between the store and the query compiler.

Times are stored as RFC 3339 UTC strings with milliseconds (``2026-11-23T18:59:17.123Z``),
which sort correctly as text. Booleans are 0/1 integers.
"""

from __future__ import annotations

FOLDER_MIME = "application/vnd.google-apps.folder"
NATIVE_PREFIX = "application/vnd.google-apps."
SHORTCUT_MIME = "application/vnd.google-apps.shortcut"
"""Google's own types (Docs, Sheets, shortcuts, folders): no size or md5 on Drive."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    mime_type           TEXT NOT NULL,
    description         TEXT,
    size                INTEGER,           -- bytes of content; NULL for folders
    md5                 TEXT,              -- hex md5 of content; NULL for folders
    sha1                TEXT,              -- NULL also for content stored before Drive kept it
    sha256              TEXT,
    blob                TEXT,              -- content file name under ROOT/blobs; NULL if none
    created_time        TEXT NOT NULL,
    modified_time       TEXT NOT NULL,
    trashed             INTEGER NOT NULL DEFAULT 0,
    explicitly_trashed  INTEGER NOT NULL DEFAULT 0,
    trashed_time        TEXT,
    starred             INTEGER NOT NULL DEFAULT 0,
    version             INTEGER NOT NULL DEFAULT 1,
    original_filename   TEXT,
    listed_at           REAL NOT NULL      -- unix time from which files.list shows the file
);
CREATE INDEX IF NOT EXISTS files_by_name ON files(name);
CREATE TABLE IF NOT EXISTS parents (
    file_id   TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    parent_id TEXT NOT NULL,
    PRIMARY KEY (file_id, parent_id)
);
CREATE INDEX IF NOT EXISTS parents_by_parent ON parents(parent_id, file_id);
CREATE TABLE IF NOT EXISTS app_properties (
    file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (file_id, key)
);
CREATE TABLE IF NOT EXISTS properties (
    file_id TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (file_id, key)
);
"""
