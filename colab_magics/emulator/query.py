"""Drive v3 search queries (``q``) and sort orders (``orderBy``) compiled to SQLite.

``compile_query`` turns ``q`` into a boolean SQL expression over the table ``files`` of
:mod:`colab_magics.emulator.schema` (columns named ``files.col``, values bound as ``?``), with
``EXISTS`` subqueries on ``parents``, ``app_properties`` and ``properties``. The grammar is the one
Drive documents (guides/search-files and guides/ref-search-terms)::

    query   := or
    or      := and ("or" and)*
    and     := unary ("and" unary)*
    unary   := "not" unary | "(" or ")" | term
    term    := FIELD OP VALUE                       name = 'x', modifiedTime > '2024-01-01T00:00:00'
             | STRING "in" FIELD                    'ID' in parents, 'me' in owners
             | FIELD "has" "{" key = STRING "and" value = STRING "}"

Keywords (``and``, ``or``, ``not``, ``contains``, ``in``, ``has``, ``true``, ``false``, ``key``,
``value``) are matched in any case, as Drive does; field names must be spelled exactly. Anything
malformed is Drive's answer: 400 ``invalid``, ``Invalid Value``, location ``q``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import string
from collections.abc import Callable, Sequence

from colab_magics.emulator.errors import DriveError, invalid
from colab_magics.emulator.schema import FOLDER_MIME

# --- AST -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Compare:
    """``field op value``: ``name contains 'x'``, ``trashed = false``."""

    field: str
    op: str
    value: str | bool


@dataclasses.dataclass(frozen=True)
class Membership:
    """``'value' in field``: ``'ID' in parents``, ``'me' in owners``."""

    value: str
    field: str


@dataclasses.dataclass(frozen=True)
class Has:
    """``field has { key='k' and value='v' }`` on ``properties`` or ``appProperties``."""

    field: str
    key: str
    value: str


@dataclasses.dataclass(frozen=True)
class Not:
    operand: Node


@dataclasses.dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


Node = Compare | Membership | Has | Not | And | Or

# --- What each term accepts ----------------------------------------------------------------------

_STRING_OPS = frozenset({"contains", "=", "!="})
_DATE_OPS = frozenset({"<", "<=", "=", "!=", ">", ">="})
_EQ_OPS = frozenset({"=", "!="})

# field -> (operators, value type)
_COMPARE_TERMS: dict[str, tuple[frozenset[str], type]] = {
    "name": (_STRING_OPS, str),
    "fullText": (frozenset({"contains"}), str),
    "mimeType": (_STRING_OPS, str),
    "modifiedTime": (_DATE_OPS, str),
    "createdTime": (_DATE_OPS, str),
    "trashed": (_EQ_OPS, bool),
    "starred": (_EQ_OPS, bool),
    "sharedWithMe": (_EQ_OPS, bool),
    "visibility": (_EQ_OPS, str),
}
_MEMBERSHIP_TERMS = frozenset({"parents", "owners", "writers", "readers"})
_HAS_TERMS = {"properties": "properties", "appProperties": "app_properties"}
_DATE_COLUMNS = {"modifiedTime": "files.modified_time", "createdTime": "files.created_time"}
_BOOL_COLUMNS = {"trashed": "files.trashed", "starred": "files.starred"}

# Deep nesting would overflow Python's stack; no real query comes near this.
_MAX_DEPTH = 64


def _bad_query() -> DriveError:
    return invalid("Invalid Value", location="q")


# --- Lexer ---------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<punct>[(){}])
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<quote>')
    """,
    re.VERBOSE,
)


@dataclasses.dataclass(frozen=True)
class _Token:
    kind: str  # "op", "punct", "word", "string", "end"
    text: str


def _read_string(q: str, start: int) -> tuple[str, int]:
    """The literal opening at ``q[start] == "'"``, and the index just past its closing quote."""
    out: list[str] = []
    i = start + 1
    while i < len(q):
        c = q[i]
        if c == "'":
            return "".join(out), i + 1
        if c == "\\":
            # Drive documents two escapes; any other is a client bug worth reporting.
            if i + 1 < len(q) and q[i + 1] in "'\\":
                out.append(q[i + 1])
                i += 2
                continue
            raise _bad_query()
        out.append(c)
        i += 1
    raise _bad_query()


def _tokenize(q: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(q):
        m = _TOKEN_RE.match(q, i)
        if m is None:
            raise _bad_query()
        kind = m.lastgroup
        if kind == "quote":
            text, i = _read_string(q, i)
            tokens.append(_Token("string", text))
            continue
        if kind != "space":
            tokens.append(_Token(kind, m.group()))
        i = m.end()
    tokens.append(_Token("end", ""))
    return tokens


# --- Parser --------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        if token.kind != "end":
            self.pos += 1
        return token

    def at_keyword(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.text.lower() == word

    def expect_keyword(self, word: str) -> None:
        if not self.at_keyword(word):
            raise _bad_query()
        self.take()

    def expect(self, kind: str, text: str | None = None) -> _Token:
        token = self.take()
        if token.kind != kind or (text is not None and token.text != text):
            raise _bad_query()
        return token

    def parse(self) -> Node:
        node = self.parse_or()
        if self.peek().kind != "end":
            raise _bad_query()
        return node

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while self.at_keyword("or"):
            self.take()
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> Node:
        operands = [self.parse_unary()]
        while self.at_keyword("and"):
            self.take()
            operands.append(self.parse_unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_unary(self) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _bad_query()
        try:
            if self.at_keyword("not"):
                self.take()
                return Not(self.parse_unary())
            if self.peek().kind == "punct" and self.peek().text == "(":
                self.take()
                node = self.parse_or()
                self.expect("punct", ")")
                return node
            return self.parse_term()
        finally:
            self.depth -= 1

    def parse_term(self) -> Node:
        first = self.take()
        if first.kind == "string":
            self.expect_keyword("in")
            field = self.expect("word").text
            if field not in _MEMBERSHIP_TERMS:
                raise _bad_query()
            return Membership(first.text, field)
        if first.kind != "word":
            raise _bad_query()
        field = first.text
        if self.at_keyword("has"):
            self.take()
            if field not in _HAS_TERMS:
                raise _bad_query()
            return self.parse_has_block(field)
        if field not in _COMPARE_TERMS:
            raise _bad_query()
        ops, value_type = _COMPARE_TERMS[field]
        op_token = self.take()
        op = op_token.text.lower() if op_token.kind == "word" else op_token.text
        if op_token.kind not in ("op", "word") or op not in ops:
            raise _bad_query()
        value = self.parse_value()
        if type(value) is not value_type:
            raise _bad_query()
        if field in _DATE_COLUMNS:
            _parse_time(value)  # reject bad dates here, not at compile time
        return Compare(field, op, value)

    def parse_value(self) -> str | bool:
        token = self.take()
        if token.kind == "string":
            return token.text
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        raise _bad_query()

    def parse_has_block(self, field: str) -> Has:
        self.expect("punct", "{")
        pairs: dict[str, str] = {}
        for i in range(2):
            if i:
                self.expect_keyword("and")
            name = self.expect("word").text.lower()
            if name not in ("key", "value") or name in pairs:
                raise _bad_query()
            self.expect("op", "=")
            pairs[name] = self.expect("string").text
        self.expect("punct", "}")
        return Has(field, pairs["key"], pairs["value"])


def parse_query(q: str) -> Node:
    """Parse a Drive ``q`` string into an AST; malformed input raises ``DriveError`` 400."""
    return _Parser(_tokenize(q)).parse()


# --- Times ---------------------------------------------------------------------------------------

_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?)?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))?"
)
_MS = dt.timedelta(milliseconds=1)
_US = dt.timedelta(microseconds=1)


def _format_ms(t: dt.datetime) -> str:
    # strftime's %Y does not zero-pad years below 1000 everywhere; format by hand.
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T"
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond // 1000:03d}Z"
    )


def _parse_time(literal: str) -> tuple[str, str]:
    """``literal`` as stored-format UTC bounds ``(floor, ceil)`` at millisecond precision.

    No zone means UTC, as Drive documents. ``floor == ceil`` unless the literal carries digits
    below the millisecond, which stored times never have.
    """
    m = _TIME_RE.fullmatch(literal.strip())
    if m is None:
        raise _bad_query()
    *date_time, frac, _z, sign, off_h, off_m = m.groups()
    frac = (frac or "").ljust(9, "0")
    try:
        offset = dt.timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
        zone = dt.timezone(-offset if sign == "-" else offset)
        t = dt.datetime(*(int(p or 0) for p in date_time), int(frac[:6]), tzinfo=zone)
        t = t.astimezone(dt.timezone.utc)
        floor = _format_ms(t)
        sub_ms = int(frac[3:]) != 0
        ceil = _format_ms(t - t.microsecond % 1000 * _US + _MS) if sub_ms else floor
    except (ValueError, OverflowError):
        raise _bad_query() from None
    return floor, ceil


# --- Compiler ------------------------------------------------------------------------------------

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
# A "word" character for name prefix matching: ASCII letters and digits, and anything non-ASCII.
_NON_WORD = "[^a-z0-9\u0080-\U0010ffff]"


def _sql_lower(s: str) -> str:
    """Lower-case exactly as SQLite's built-in ``lower()`` does (ASCII only)."""
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
            return (
                "EXISTS (SELECT 1 FROM parents WHERE parents.file_id = files.id"
                f" AND parents.parent_id = {self.bind(parent)})"
            )
        # One user owns everything here; nobody else has a role on any file.
        return "1" if node.field == "owners" and node.value == "me" else "0"

    def _has(self, node: Has) -> str:
        table = _HAS_TERMS[node.field]
        return (
            f"EXISTS (SELECT 1 FROM {table} WHERE {table}.file_id = files.id"
            f" AND {table}.key = {self.bind(node.key)} AND {table}.value = {self.bind(node.value)})"
        )

    def _compare(self, node: Compare) -> str:
        field, op, value = node.field, node.op, node.value
        if field in _BOOL_COLUMNS:
            return f"({_BOOL_COLUMNS[field]} {op} {self.bind(int(value))})"
        if field == "sharedWithMe":
            # Nothing is shared with the single user: the column is constantly false.
            return "1" if (value is False) == (op == "=") else "0"
        if field == "visibility":
            # Emulated files have no link or domain sharing: every one is 'limited'.
            return "1" if (value == "limited") == (op == "=") else "0"
        if field in _DATE_COLUMNS:
            return self._compare_time(_DATE_COLUMNS[field], op, value)
        if field == "fullText":
            return self._full_text(value)
        column = "files.name" if field == "name" else "files.mime_type"
        if op == "contains":
            if field == "name":
                return self._name_contains(value)
            return f"(instr(lower({column}), {self.bind(_sql_lower(value))}) > 0)"
        return f"({column} {op} {self.bind(value)})"

    def _compare_time(self, column: str, op: str, literal: str) -> str:
        floor, ceil = _parse_time(literal)
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
