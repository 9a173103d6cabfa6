"""Drive v3 search queries (``q``): the grammar, parsed into a small AST.

The grammar is the one Drive documents (guides/search-files and guides/ref-search-terms)::

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

from colab_magics.emulator.errors import DriveError, invalid

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
    "viewedByMeTime": (_DATE_OPS, str),
    "shortcutDetails.targetId": (_EQ_OPS, str),
    "trashed": (_EQ_OPS, bool),
    "starred": (_EQ_OPS, bool),
    "sharedWithMe": (_EQ_OPS, bool),
    "visibility": (_EQ_OPS, str),
}
_MEMBERSHIP_TERMS = frozenset({"parents", "owners", "writers", "readers"})
HAS_TERMS = {"properties": "properties", "appProperties": "app_properties"}
DATE_COLUMNS = {
    "modifiedTime": "files.modified_time",
    "createdTime": "files.created_time",
    # One user, who wrote every file: its last write is the last time that user saw it.
    "viewedByMeTime": "files.modified_time",
}
BOOL_COLUMNS = {"trashed": "files.trashed", "starred": "files.starred"}

# Deep nesting would overflow Python's stack; no real query comes near this.
_MAX_DEPTH = 64


def bad_query() -> DriveError:
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
            raise bad_query()
        out.append(c)
        i += 1
    raise bad_query()


def _tokenize(q: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(q):
        m = _TOKEN_RE.match(q, i)
        if m is None:
            raise bad_query()
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
            raise bad_query()
        self.take()

    def expect(self, kind: str, text: str | None = None) -> _Token:
        token = self.take()
        if token.kind != kind or (text is not None and token.text != text):
            raise bad_query()
        return token

    def parse(self) -> Node:
        node = self.parse_or()
        if self.peek().kind != "end":
            raise bad_query()
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
            raise bad_query()
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
                raise bad_query()
            return Membership(first.text, field)
        if first.kind != "word":
            raise bad_query()
        field = first.text
        if self.at_keyword("has"):
            self.take()
            if field not in HAS_TERMS:
                raise bad_query()
            return self.parse_has_block(field)
        if field not in _COMPARE_TERMS:
            raise bad_query()
        ops, value_type = _COMPARE_TERMS[field]
        op_token = self.take()
        op = op_token.text.lower() if op_token.kind == "word" else op_token.text
        if op_token.kind not in ("op", "word") or op not in ops:
            raise bad_query()
        value = self.parse_value()
        if type(value) is not value_type:
            raise bad_query()
        if field in DATE_COLUMNS:
            parse_time(value)  # reject bad dates here, not at compile time
        return Compare(field, op, value)

    def parse_value(self) -> str | bool:
        token = self.take()
        if token.kind == "string":
            return token.text
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        raise bad_query()

    def parse_has_block(self, field: str) -> Has:
        self.expect("punct", "{")
        pairs: dict[str, str] = {}
        for i in range(2):
            if i:
                self.expect_keyword("and")
            name = self.expect("word").text.lower()
            if name not in ("key", "value") or name in pairs:
                raise bad_query()
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


def parse_time(literal: str) -> tuple[str, str]:
    """``literal`` as stored-format UTC bounds ``(floor, ceil)`` at millisecond precision.

    No zone means UTC, as Drive documents. ``floor == ceil`` unless the literal carries digits
    below the millisecond, which stored times never have.
    """
    m = _TIME_RE.fullmatch(literal.strip())
    if m is None:
        raise bad_query()
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
        raise bad_query() from None
    return floor, ceil
