"""Drive ``q`` and ``orderBy`` compiled to SQL and run against a real SQLite store."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colab_magics.emulator.errors import DriveError
from colab_magics.emulator.query import compile_order_by, compile_query
from colab_magics.emulator.query_syntax import (
    And,
    Compare,
    Has,
    Membership,
    Not,
    Or,
    parse_query,
)
from colab_magics.emulator.schema import FOLDER_MIME, SCHEMA

ROOT = "ROOT0"

# id, name, mime, description, size, created, modified, trashed, starred, parents
ROWS = [
    ("fa", "Checkpoints", FOLDER_MIME, None, None,
     "2024-01-01T00:00:00.000Z", "2024-01-02T00:00:00.000Z", 0, 0, [ROOT]),
    ("fb", "model-step-100.pt", "application/octet-stream", "best run so far", 1000,
     "2024-02-01T00:00:00.000Z", "2024-02-01T10:00:00.500Z", 0, 0, ["fa"]),
    ("fc", "model-step-200.pt", "application/octet-stream", None, 3000,
     "2024-02-15T00:00:00.000Z", "2024-03-01T00:00:00.000Z", 1, 0, ["fa"]),
    ("fd", "HelloWorld.txt", "text/plain", "greeting", 5,
     "2023-12-01T00:00:00.000Z", "2023-12-31T23:00:00.000Z", 0, 1, [ROOT]),
    ("fe", "Valentine's Day", "text/plain", None, 10,
     "2024-02-14T00:00:00.000Z", "2024-02-14T00:00:00.000Z", 0, 0, [ROOT, "fa"]),
    ("ff", "back\\slash 50%_off [v2]*?.txt", "text/csv", None, 0,
     "2024-04-01T00:00:00.000Z", "2024-04-01T00:00:00.000Z", 0, 0, ["fg"]),
    ("fg", "Data", FOLDER_MIME, None, None,
     "2024-01-05T00:00:00.000Z", "2024-01-05T00:00:00.000Z", 0, 1, [ROOT]),
]  # fmt: skip
APP_PROPERTIES = [("fb", "kind", "ckpt"), ("fb", "step", "100"), ("fc", "kind", "ckpt")]
PROPERTIES = [("fc", "owner", "alice"), ("fb", "owner", "bob")]
ALL = {row[0] for row in ROWS}


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    for fid, name, mime, desc, size, created, modified, trashed, starred, parents in ROWS:
        conn.execute(
            "INSERT INTO files (id, name, mime_type, description, size, created_time,"
            " modified_time, trashed, starred, listed_at) VALUES (?,?,?,?,?,?,?,?,?,0)",
            (fid, name, mime, desc, size, created, modified, trashed, starred),
        )
        conn.executemany("INSERT INTO parents VALUES (?, ?)", [(fid, p) for p in parents])
    conn.executemany("INSERT INTO app_properties VALUES (?, ?, ?)", APP_PROPERTIES)
    conn.executemany("INSERT INTO properties VALUES (?, ?, ?)", PROPERTIES)
    return conn


def matching(db: sqlite3.Connection, q: str | None) -> set[str]:
    sql, params = compile_query(q, root_id=ROOT)
    return {r[0] for r in db.execute(f"SELECT files.id FROM files WHERE ({sql})", params)}


def ordered(db: sqlite3.Connection, order_by: str | None) -> list[str]:
    order = compile_order_by(order_by)
    return [r[0] for r in db.execute(f"SELECT files.id FROM files ORDER BY {order}")]


def assert_invalid(error: DriveError, location: str) -> None:
    assert (error.status, error.reason, error.location) == (400, "invalid", location)
    assert error.message == "Invalid Value"


@pytest.mark.parametrize("q", [None, "", "   "])
def test_no_query_matches_everything(db, q):
    assert compile_query(q, root_id=ROOT) == ("1", [])
    assert matching(db, q) == ALL


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        # name: whole-name equality and prefix-of-a-word contains, both case-insensitive.
        ("name = 'Checkpoints'", {"fa"}),
        ("name = 'checkpoints'", {"fa"}),
        ("name = 'CHECKPOINTS'", {"fa"}),
        ("name = 'checkpoint'", set()),
        ("name = 'helloworld.TXT'", {"fd"}),
        ("name != 'Checkpoints'", ALL - {"fa"}),
        ("name != 'cHECKPOINTS'", ALL - {"fa"}),
        ("not name = 'DATA'", ALL - {"fg"}),
        ("name contains 'Hello'", {"fd"}),
        ("name contains 'hello'", {"fd"}),
        ("name contains 'World'", set()),  # Drive's own example: a prefix, not a substring
        ("name contains 'step'", {"fb", "fc"}),
        ("name contains 'tep'", set()),
        ("name contains 'model-step-2'", {"fc"}),
        ("name contains ''", ALL),
        ("name contains '[v2]*?'", {"ff"}),  # GLOB metacharacters are literal
        ("name contains '50%_'", {"ff"}),
        ("name contains '_off'", {"ff"}),
        ("name contains 'slash'", {"ff"}),
        # fullText: substring of name or description, case-insensitive.
        ("fullText contains 'best'", {"fb"}),
        ("fullText contains 'ELLOWOR'", {"fd"}),
        ("fullText contains '\"run so\"'", {"fb"}),
        ("fullText contains 'nothing like it'", set()),
        # mimeType
        (f"mimeType = '{FOLDER_MIME}'", {"fa", "fg"}),
        (f"mimeType != '{FOLDER_MIME}'", ALL - {"fa", "fg"}),
        ("mimeType contains 'text/'", {"fd", "fe", "ff"}),
        ("mimeType contains 'TEXT/PLAIN'", {"fd", "fe"}),
        # booleans
        ("trashed = true", {"fc"}),
        ("trashed = false", ALL - {"fc"}),
        ("trashed != true", ALL - {"fc"}),
        ("starred = true", {"fd", "fg"}),
        ("starred != false", {"fd", "fg"}),
        ("sharedWithMe = true", set()),
        ("sharedWithMe = false", ALL),
        ("sharedWithMe != true", ALL),
        ("sharedWithMe != false", set()),
        # collections
        ("'root' in parents", {"fa", "fd", "fe", "fg"}),
        (f"'{ROOT}' in parents", {"fa", "fd", "fe", "fg"}),
        ("'fa' in parents", {"fb", "fc", "fe"}),
        ("'nope' in parents", set()),
        ("'me' in owners", ALL),
        ("'someone@example.com' in owners", set()),
        ("'me' in writers", set()),
        ("'me' in readers", set()),
        ("visibility = 'limited'", ALL),
        ("visibility = 'anyoneWithLink'", set()),
        ("visibility != 'limited'", set()),
        ("visibility != 'anyoneCanFind'", ALL),
        # properties
        ("appProperties has { key='kind' and value='ckpt' }", {"fb", "fc"}),
        ("appProperties has {value='100' and key='step'}", {"fb"}),
        ("appProperties has { key='step' and value='200' }", set()),
        ("appProperties has { key='owner' and value='alice' }", set()),
        ("properties has { key='owner' and value='alice' }", {"fc"}),
        # escapes
        ("name = 'Valentine\\'s Day'", {"fe"}),
        ("name contains 'valentine\\'s'", {"fe"}),
        ("name = 'back\\\\slash 50%_off [v2]*?.txt'", {"ff"}),
        ("name = 'BACK\\\\SLASH 50%_OFF [V2]*?.TXT'", {"ff"}),
        ("name = 'back\\\\slash 50_%off [v2]*?.txt'", set()),  # LIKE wildcards are literal
    ],
)
def test_terms(db, q, expected):
    assert matching(db, q) == expected


def test_name_equality_ignores_case_as_drive_does(db):
    """Drive's ``name = 'x'`` matches names that differ from ``x`` only in case: rclone's Drive
    backend (backend/drive/drive.go, ``list``) re-checks every result "since the `=` operator
    is case insensitive"; Drive's search guide (developers.google.com/drive/api/guides/
    search-files) lists ``=`` for ``name`` without promising exact case. ``!=`` is its negation,
    and the SQL wildcards of LIKE/GLOB are plain characters."""
    assert matching(db, "name = 'model-STEP-100.PT'") == {"fb"}
    assert matching(db, "name = 'model-step-100.pt' or name = 'MODEL-STEP-200.PT'") == {"fb", "fc"}
    assert matching(db, "name != 'DATA'") == ALL - {"fg"}
    assert matching(db, "name = 'model-step-1%'") == set()
    assert matching(db, "name = 'model-step-100.p_'") == set()


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("modifiedTime > '2024-02-01T10:00:00'", {"fb", "fc", "fe", "ff"}),
        ("modifiedTime >= '2024-02-01T10:00:00.500Z'", {"fb", "fc", "fe", "ff"}),
        ("modifiedTime > '2024-02-01T10:00:00.500Z'", {"fc", "fe", "ff"}),
        ("modifiedTime = '2024-02-01T10:00:00.5'", {"fb"}),
        ("modifiedTime = '2024-02-01T10:00:00.500000Z'", {"fb"}),
        ("modifiedTime = '2024-02-01T11:00:00.500+01:00'", {"fb"}),
        ("modifiedTime = '2024-02-01T05:30:00.5-04:30'", {"fb"}),
        ("modifiedTime = '2024-02-01 10:00:00.500z'", {"fb"}),
        # viewedByMeTime: accepted in q as Drive documents it ("Search query terms and
        # operators", developers.google.com/drive/api/guides/ref-search-terms); the one user
        # last saw each file when it last wrote it.
        ("viewedByMeTime > '2024-02-01T10:00:00.500Z'", {"fc", "fe", "ff"}),
        # shortcutDetails.targetId (same reference; = and != only): no file here is a shortcut.
        ("shortcutDetails.targetId = 'fa'", set()),
        ("shortcutDetails.targetId != 'fa'", set()),
        ("modifiedTime = '2024-02-02T00:00:00.5+14:00'", {"fb"}),
        ("modifiedTime != '2024-02-01T10:00:00.500Z'", ALL - {"fb"}),
        ("modifiedTime < '2024-01-01'", {"fd"}),
        ("modifiedTime <= '2024-01-05T00:00:00'", {"fa", "fd", "fg"}),
        ("modifiedTime < '2024-01-05T00:00:00'", {"fa", "fd"}),
        # A literal finer than a millisecond lies strictly between two stored instants.
        ("modifiedTime < '2024-02-01T10:00:00.5004Z'", {"fa", "fb", "fd", "fg"}),
        ("modifiedTime <= '2024-02-01T10:00:00.5004Z'", {"fa", "fb", "fd", "fg"}),
        ("modifiedTime > '2024-02-01T10:00:00.5004Z'", {"fc", "fe", "ff"}),
        ("modifiedTime >= '2024-02-01T10:00:00.5004Z'", {"fc", "fe", "ff"}),
        ("modifiedTime = '2024-02-01T10:00:00.5004Z'", set()),
        ("modifiedTime != '2024-02-01T10:00:00.5004Z'", ALL),
        ("modifiedTime > '2024-02-01T10:00:00.4999Z'", {"fb", "fc", "fe", "ff"}),
        ("createdTime >= '2024-02-14T00:00:00' and createdTime < '2024-03-01'", {"fc", "fe"}),
        ("createdTime = '2023-12-01T00:00:00Z'", {"fd"}),
    ],
)
def test_times_compare_after_normalising_to_utc_milliseconds(db, q, expected):
    assert matching(db, q) == expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        # and binds tighter than or: a or (b and c)
        ("name = 'Data' or trashed = true and starred = true", {"fg"}),
        ("(name = 'Data' or trashed = true) and starred = true", {"fg"}),
        ("name = 'Data' or trashed = true and starred = false", {"fg", "fc"}),
        ("starred = true and name = 'Data' or trashed = true", {"fg", "fc"}),
        ("not trashed = true", ALL - {"fc"}),
        ("not 'fa' in parents", ALL - {"fb", "fc", "fe"}),
        ("not (name = 'Data' or name = 'Checkpoints')", ALL - {"fa", "fg"}),
        ("not not starred = true", {"fd", "fg"}),
        ("not starred = true and not trashed = true", ALL - {"fd", "fg", "fc"}),
        ("'fa' in parents and not name contains 'model' and trashed = false", {"fe"}),
        ("((('root' in parents)))", {"fa", "fd", "fe", "fg"}),
        # Keywords in any case; spaces around operators optional.
        ("name = 'Data' OR name = 'Checkpoints' AND NOT trashed = TRUE", {"fa", "fg"}),
        ("'fa' IN parents and name CONTAINS 'MODEL'", {"fb", "fc"}),
        ("appProperties HAS { KEY='kind' AND Value='ckpt' }", {"fb", "fc"}),
        ("trashed=false and'fa'in parents", {"fb", "fe"}),
    ],
)
def test_boolean_structure(db, q, expected):
    assert matching(db, q) == expected


def test_parse_builds_the_documented_precedence():
    assert parse_query("name = 'a' or trashed = true and not 'p' in parents") == Or(
        (
            Compare("name", "=", "a"),
            And((Compare("trashed", "=", True), Not(Membership("p", "parents")))),
        )
    )
    assert parse_query("appProperties has { value = 'v' and key = 'k' }") == Has(
        "appProperties", "k", "v"
    )
    assert parse_query("name CONTAINS 'It\\'s'") == Compare("name", "contains", "It's")


def test_values_are_bound_never_spliced(db):
    sql, params = compile_query("name = 'x\\' OR 1=1 --'", root_id=ROOT)
    assert "OR 1=1" not in sql
    assert params == ["x' OR 1=1 --"]
    assert matching(db, "name = 'x\\' OR 1=1 --'") == set()


def test_very_long_disjunctions_stay_within_sqlite_limits(db):
    q = " or ".join(f"'p{i}' in parents" for i in range(1100)) + " or name = 'Data'"
    assert matching(db, q) == {"fg"}
    q = " and ".join(["trashed = false"] * 1100)
    assert matching(db, q) == ALL - {"fc"}


MALFORMED = [
    "nam = 'x'",
    "Name = 'x'",
    "name",
    "name =",
    "name = 'x",
    "name = 'x\\",
    "name = 'a\\nb'",
    'name = "x"',
    "name == 'x'",
    "name = 'x' and",
    "name = 'x' or",
    "and name = 'x'",
    "not",
    "name = 'x' junk",
    "name = 'x' name = 'y'",
    "name = 'x' && trashed = false",
    "()",
    "(name = 'x'",
    "name = 'x')",
    "( )",
    "name < 'x'",
    "name contains true",
    "fullText = 'x'",
    "trashed contains 'x'",
    "trashed = 'true'",
    "trashed = yes",
    "starred > false",
    "modifiedTime contains '2024'",
    "modifiedTime > 'yesterday'",
    "modifiedTime > '2024-13-01T00:00:00'",
    "modifiedTime > '2024-02-30'",
    "modifiedTime > '2024-01-01T25:00:00'",
    "modifiedTime > '0001-01-01T00:00:00+01:00'",
    "modifiedTime > true",
    "'x' in name",
    "parents in 'x'",
    "'x' in",
    "'x' parents",
    "'x' = parents",
    "'x'",
    "true",
    "appProperties = 'x'",
    "appProperties has { key='k' }",
    "appProperties has { key='k' and value='v'",
    "appProperties has key='k' and value='v'",
    "appProperties has { key='k' and key='v' }",
    "appProperties has { key='k' or value='v' }",
    "appProperties has { key=k and value='v' }",
    "name has { key='k' and value='v' }",
    "visibility = true",
    "{",
    "#",
    "name = 'x' ; drop table files",
    "(" * 200 + "trashed = true" + ")" * 200,
    "not " * 200 + "trashed = true",
]


@pytest.mark.parametrize("q", MALFORMED)
def test_malformed_queries_are_invalid_value(q):
    with pytest.raises(DriveError) as caught:
        compile_query(q, root_id=ROOT)
    assert_invalid(caught.value, "q")


_FRAGMENTS = st.sampled_from(
    [
        "name", "fullText", "mimeType", "modifiedTime", "trashed", "parents", "owners",
        "appProperties", "properties", "sharedWithMe", "visibility", "and", "or", "not", "in",
        "has", "contains", "true", "false", "=", "!=", "<", "<=", ">", ">=", "(", ")", "{", "}",
        "'x'", "'root'", "'me'", "'2024-01-01T00:00:00Z'", "key", "value", "'", "\\", " ",
    ]
)  # fmt: skip


def _check_parses_or_is_invalid(db: sqlite3.Connection, q: str) -> None:
    try:
        sql, params = compile_query(q, root_id=ROOT)
    except DriveError as e:
        assert_invalid(e, "q")
        return
    # Whatever parses must also be SQL that SQLite runs.
    db.execute(f"SELECT count(*) FROM files WHERE ({sql})", params).fetchone()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_random_text_parses_or_is_invalid(db, q):
    _check_parses_or_is_invalid(db, q)


@settings(max_examples=400, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=14).map(" ".join))
def test_random_token_soup_parses_or_is_invalid(db, q):
    _check_parses_or_is_invalid(db, q)


# --- orderBy -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "createdTime", "folder", "modifiedByMeTime", "modifiedTime", "name", "name_natural",
        "quotaBytesUsed", "recency", "sharedWithMeTime", "starred", "viewedByMeTime",
    ],
)  # fmt: skip
def test_every_documented_order_key_runs_both_ways(db, key):
    up, down = ordered(db, key), ordered(db, f"{key} desc")
    assert sorted(up) == sorted(down) == sorted(ALL)
    assert compile_order_by(key).endswith("files.id ASC")


def test_order_by_sorts_by_each_key_then_id(db):
    assert ordered(db, "name") == ["fa", "fg", "fd", "fe", "ff", "fb", "fc"]
    assert ordered(db, "name desc") == ["fc", "fb", "ff", "fe", "fd", "fg", "fa"]
    assert ordered(db, "folder,name")[:2] == ["fa", "fg"]
    assert ordered(db, "folder desc,name")[-2:] == ["fa", "fg"]
    assert ordered(db, "quotaBytesUsed desc, createdTime")[:2] == ["fc", "fb"]
    # Equal keys fall back to the id, so paging is stable.
    assert ordered(db, "starred desc") == ["fd", "fg", "fa", "fb", "fc", "fe", "ff"]
    assert ordered(db, " modifiedTime  DESC , name ") == ["ff", "fc", "fe", "fb", "fg", "fa", "fd"]


def test_default_order_is_most_recently_modified_first(db):
    assert compile_order_by(None) == compile_order_by("") == compile_order_by("modifiedTime desc")
    assert ordered(db, None) == ["ff", "fc", "fe", "fb", "fg", "fa", "fd"]


@pytest.mark.parametrize(
    "spec", ["size", "Name", "name sideways", "name desc extra", "name,", ",name", "name;drop"]
)
def test_unknown_order_keys_are_invalid(spec):
    with pytest.raises(DriveError) as caught:
        compile_order_by(spec)
    assert_invalid(caught.value, "orderBy")
