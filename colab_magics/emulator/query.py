"""Drive v3 search queries (``q``) and sort orders (``orderBy``) compiled to SQLite.

``compile_query`` turns ``q`` (parsed by :mod:`colab_magics.emulator.query_syntax`) into a
boolean SQL expression over the table ``files`` of :mod:`colab_magics.emulator.schema` (columns
named ``files.col``, values bound as ``?``), with ``EXISTS`` subqueries on ``parents``,
``app_properties`` and ``properties``.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence

from colab_magics.emulator.errors import invalid
from colab_magics.emulator.query_syntax import (
    BOOL_COLUMNS,
    DATE_COLUMNS,
    HAS_TERMS,
    And,
    Compare,
    Has,
    Membership,
    Node,
    Not,
    Or,
    parse_query,
    parse_time,
)
from colab_magics.emulator.schema import FOLDER_MIME, SHORTCUT_MIME

# --- Compiler ------------------------------------------------------------------------------------

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
# A "word" character for name prefix matching: ASCII letters and digits, and anything non-ASCII.
_NON_WORD = "[^a-z0-9\u0080-\U0010ffff]"


def _sql_lower(s: str) -> str:
    """Lower-case exactly as SQLite's built-in ``lower()`` does (ASCII only).

    Names compare through that ``lower()`` too: how Drive folds letters beyond ASCII is not
    documented, so those compare exactly, and the SQL runs on any SQLite, no custom function.
    """
    return s.translate(_ASCII_LOWER)


def _glob_escape(s: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in s)


def _balanced(op: str, parts: Sequence[str]) -> str:
    # Join as a balanced tree: SQLite caps expression depth at 1000, and a flat
    # "a OR b OR c ..." nests one level per term.
    if len(parts) == 1:
        return parts[0]
    mid = len(parts) // 2
    return f"({_balanced(op, parts[:mid])} {op} {_balanced(op, parts[mid:])})"


class _Compiler:
    def __init__(self, root_id: str) -> None:
        self.root_id = root_id
        self.params: list = []

    def bind(self, value: object) -> str:
        self.params.append(value)
        return "?"

    def compile(self, node: Node) -> str:
        handler: Callable[[Node], str] = getattr(self, f"_{type(node).__name__.lower()}")
        return handler(node)

    def _and(self, node: And) -> str:
        return _balanced("AND", [self.compile(n) for n in node.operands])

    def _or(self, node: Or) -> str:
        return _balanced("OR", [self.compile(n) for n in node.operands])

    def _not(self, node: Not) -> str:
        return f"(NOT {self.compile(node.operand)})"

    def _membership(self, node: Membership) -> str:
        if node.field == "parents":
            parent = self.root_id if node.value == "root" else node.value
            # IN, not a correlated EXISTS: SQLite then starts from the parent's index instead
            # of scanning every file (a listing of one folder cost O(all files) before).
            return (
                "files.id IN (SELECT parents.file_id FROM parents"
                f" WHERE parents.parent_id = {self.bind(parent)})"
            )
        # One user owns everything here; nobody else has a role on any file.
        return "1" if node.field == "owners" and node.value == "me" else "0"

    def _has(self, node: Has) -> str:
        table = HAS_TERMS[node.field]
        return (
            f"EXISTS (SELECT 1 FROM {table} WHERE {table}.file_id = files.id"
            f" AND {table}.key = {self.bind(node.key)} AND {table}.value = {self.bind(node.value)})"
        )

    def _compare(self, node: Compare) -> str:
        field, op, value = node.field, node.op, node.value
        if field in BOOL_COLUMNS:
            # Unary + keeps a two-valued column out of the planner's choice of index: without
            # statistics SQLite would rather walk every untrashed file than a parent's children.
            return f"(+{BOOL_COLUMNS[field]} {op} {self.bind(int(value))})"
        if field == "sharedWithMe":
            # Nothing is shared with the single user: the column is constantly false.
            return "1" if (value is False) == (op == "=") else "0"
        if field == "shortcutDetails.targetId":
            # Shortcut targets are not stored: only a shortcut has the field, and none names
            # the file asked about.
            if op == "=":
                return "0"
            return f"(files.mime_type = {self.bind(SHORTCUT_MIME)})"
        if field == "visibility":
            # Emulated files have no link or domain sharing: every one is 'limited'.
            return "1" if (value == "limited") == (op == "=") else "0"
        if field in DATE_COLUMNS:
            return self._compare_time(DATE_COLUMNS[field], op, value)
        if field == "fullText":
            return self._full_text(value)
        if field == "name":
            if op == "contains":
                return self._name_contains(value)
            # Drive compares names without regard to case (rclone's Drive backend re-checks
            # the case of every `name =` result for this reason): only a client can tell
            # "Model.ckpt" from "model.ckpt". Store.py indexes lower(name) for this form.
            return f"(lower(files.name) {op} lower({self.bind(value)}))"
        if op == "contains":
            return f"(instr(lower(files.mime_type), {self.bind(_sql_lower(value))}) > 0)"
        return f"(files.mime_type {op} {self.bind(value)})"

    def _compare_time(self, column: str, op: str, literal: str) -> str:
        floor, ceil = parse_time(literal)
        if floor != ceil:
            # The literal falls strictly between two stored (millisecond) instants.
            if op in ("=", "!="):
                return "0" if op == "=" else "1"
            bound = {"<": ceil, "<=": floor, ">": floor, ">=": ceil}[op]
        else:
            bound = floor
        return f"({column} {op} {self.bind(bound)})"

    def _name_contains(self, value: str) -> str:
        # Drive documents `name contains` as prefix matching ('Hello' finds "HelloWorld",
        # 'World' does not); in practice it matches the prefix of any word of the name,
        # case-insensitively. Words here are split at every non-alphanumeric ASCII character.
        pattern = f"*{_NON_WORD}{_glob_escape(_sql_lower(value))}*"
        return f"((' ' || lower(files.name)) GLOB {self.bind(pattern)})"

    def _full_text(self, value: str) -> str:
        # Drive matches whole tokens of name, description and content; the emulator matches a
        # case-insensitive substring of name or description, which finds everything Drive would
        # in those two. A quoted phrase ('"hello world"') is matched as the phrase.
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        needle = _sql_lower(value)
        return (
            f"(instr(lower(files.name), {self.bind(needle)}) > 0"
            f" OR instr(lower(coalesce(files.description, '')), {self.bind(needle)}) > 0)"
        )


def compile_query(q: str | None, *, root_id: str) -> tuple[str, list]:
    """``q`` as ``(sql, params)``: a boolean expression over ``files`` with ``?`` placeholders.

    An absent or blank query matches everything (``("1", [])``). ``'root' in parents`` means
    ``root_id``. Malformed queries raise ``DriveError`` 400 ``invalid`` at location ``q``.
    """
    if q is None or not q.strip():
        return "1", []
    compiler = _Compiler(root_id)
    sql = compiler.compile(parse_query(q))
    return sql, compiler.params


# --- orderBy -------------------------------------------------------------------------------------

_FOLDER_FIRST = f"(CASE WHEN files.mime_type = '{FOLDER_MIME}' THEN 0 ELSE 1 END)"

_ORDER_KEYS = {
    "createdTime": "files.created_time",
    "folder": _FOLDER_FIRST,
    "modifiedByMeTime": "files.modified_time",
    "modifiedTime": "files.modified_time",
    "name": "files.name",
    # Drive sorts name_natural as 1, 2, 12; plain SQLite cannot split out digit runs, so this
    # is case-insensitive alphabetical order.
    "name_natural": "files.name COLLATE NOCASE",
    "quotaBytesUsed": "coalesce(files.size, 0)",
    "recency": "files.modified_time",
    "sharedWithMeTime": "files.created_time",
    "starred": "files.starred",
    "viewedByMeTime": "files.modified_time",
}

# Drive documents no default order; it lists recently modified files first.
DEFAULT_ORDER_BY = "modifiedTime desc"


def compile_order_by(spec: str | None) -> str:
    """An ``ORDER BY`` clause (without the keywords) for a Drive ``orderBy`` value.

    Keys are Drive's, each optionally followed by ``desc`` (or ``asc``); ``files.id`` always comes
    last so that paging through equal keys is stable. Unknown keys raise ``DriveError`` 400
    ``invalid`` at location ``orderBy``.
    """
    if spec is None or not spec.strip():
        spec = DEFAULT_ORDER_BY
    terms: list[str] = []
    for item in spec.split(","):
        words = item.split()
        if not words or len(words) > 2 or words[0] not in _ORDER_KEYS:
            raise invalid("Invalid Value", location="orderBy")
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise invalid("Invalid Value", location="orderBy")
        terms.append(f"{_ORDER_KEYS[words[0]]} {direction.upper()}")
    terms.append("files.id ASC")
    return ", ".join(terms)
