"""Drive partial responses: the ``fields`` parameter (guides/fields-parameter).

Syntax: comma-separated selections; ``a/b`` selects ``b`` inside ``a``; ``a(b,c)`` selects ``b``
and ``c`` inside ``a``, nesting freely; ``*`` selects everything at its level; whitespace between
tokens is ignored. A selection inside a list applies to each element (``files(id,name)``).
Selections on the same field merge, and selecting a field whole wins over selecting part of it.

Names are checked against the resource's schema in the discovery document the client library
ships, as Drive checks them: ``files(id,capabilities,canAddChildren)`` is "Invalid field
selection canAddChildren" (the "Return specific fields" guide's example), a 400
``invalidParameter`` at location ``fields``, as are malformed masks (unbalanced parentheses,
empty names). A known field the resource happens not to have is simply absent.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from typing import Any

from googleapiclient.discovery_cache import get_static_doc

from colab_magics.emulator.errors import DriveError

FILE_DEFAULT = "kind,id,name,mimeType"
"""``files.get``/``create``/``update``/``copy`` without ``fields`` (Drive adds ``resourceKey``,
which emulated files never have)."""

FILES_LIST_DEFAULT = "kind,incompleteSearch,nextPageToken,files(kind,id,name,mimeType)"
CHANGES_LIST_DEFAULT = (
    "kind,nextPageToken,newStartPageToken,"
    "changes(kind,changeType,time,removed,fileId,file(kind,id,name,mimeType))"
)

_WHOLE = None  # a selection with no sub-selection: the whole value


@dataclasses.dataclass(frozen=True)
class FieldMask:
    """A parsed ``fields`` value: field name -> sub-mask, or ``None`` for the whole value.

    The name ``"*"`` stands for every field, whole.
    """

    children: dict[str, FieldMask | None]

    def wants(self, name: str) -> bool:
        """Whether the answer will contain field ``name`` (to skip computing costly fields)."""
        return "*" in self.children or name in self.children

    def apply(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The parts of ``resource`` this mask selects."""
        if "*" in self.children:
            return dict(resource)
        out: dict[str, Any] = {}
        for name, sub in self.children.items():
            if name in resource:
                out[name] = resource[name] if sub is _WHOLE else _apply_to(sub, resource[name])
        return out


def _apply_to(mask: FieldMask, value: Any) -> Any:
    if isinstance(value, dict):
        return mask.apply(value)
    if isinstance(value, list):
        return [_apply_to(mask, item) for item in value]
    return value  # a sub-selection on a scalar selects the scalar


def _merge(into: dict[str, FieldMask | None], name: str, sub: FieldMask | None) -> None:
    if name not in into:
        into[name] = sub
        return
    old = into[name]
    if old is _WHOLE or sub is _WHOLE:
        into[name] = _WHOLE
        return
    merged = dict(old.children)
    for child, child_sub in sub.children.items():
        _merge(merged, child, child_sub)
    into[name] = FieldMask(merged)


def _bad_fields(spec: str) -> DriveError:
    return DriveError(400, "invalidParameter", f"Invalid field selection {spec}", location="fields")


_TOKEN_RE = re.compile(r"\s*(?:([(),/])|([^(),/\s]+))")
_MAX_DEPTH = 32


class _Parser:
    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.tokens: list[str] = []
        pos = 0
        while pos < len(spec):
            m = _TOKEN_RE.match(spec, pos)
            if m is None:  # only trailing whitespace is left
                break
            self.tokens.append(m.group(1) or m.group(2))
            pos = m.end()
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.pos += 1
        return token

    def fail(self) -> DriveError:
        return _bad_fields(self.spec)

    def parse(self) -> FieldMask:
        mask = self.parse_list(0)
        if self.peek() is not None:
            raise self.fail()
        return mask

    def parse_list(self, depth: int) -> FieldMask:
        if depth > _MAX_DEPTH:
            raise self.fail()
        children: dict[str, FieldMask | None] = {}
        while True:
            name, sub = self.parse_selection(depth)
            _merge(children, name, sub)
            if self.peek() != ",":
                return FieldMask(children)
            self.take()

    def parse_selection(self, depth: int) -> tuple[str, FieldMask | None]:
        """``name``, ``name/rest`` or ``name(list)``."""
        if depth > _MAX_DEPTH:
            raise self.fail()
        name = self.take()
        if name is None or name in ("(", ")", ",", "/"):
            raise self.fail()
        nxt = self.peek()
        if nxt == "/":
            self.take()
            child, sub = self.parse_selection(depth + 1)
            return name, FieldMask({child: sub})
        if nxt == "(":
            self.take()
            sub = self.parse_list(depth + 1)
            if self.take() != ")":
                raise self.fail()
            return name, sub
        return name, _WHOLE


def parse_fields(spec: str) -> FieldMask:
    """Parse a ``fields`` value; malformed masks raise ``DriveError`` 400 ``invalidParameter``."""
    return _Parser(spec).parse()


def apply_fields(
    resource: dict[str, Any], spec: str | None, *, default: str, schema: str | None = None
) -> dict[str, Any]:
    """The partial response for ``resource`` under ``fields=spec`` (``default`` when absent).

    ``schema`` names the resource's type in Drive's discovery document (``File``,
    ``FileList``...); a selected name it does not have is refused (None: not checked).
    """
    if spec is None or not spec.strip():
        spec = default
    mask = parse_fields(spec)
    if schema is not None:
        check_fields(mask, _schemas()[schema])
    return mask.apply(resource)


@functools.cache
def _schemas() -> dict[str, Any]:
    return json.loads(get_static_doc("drive", "v3"))["schemas"]


def check_fields(mask: FieldMask, schema: dict[str, Any]) -> None:
    """Raise 400 for a name in ``mask`` that ``schema`` (an object schema) does not have."""
    properties = schema.get("properties", {})
    for name, sub in mask.children.items():
        if name == "*":
            continue
        prop = properties.get(name)
        if prop is None:
            raise _bad_fields(name)
        if sub is _WHOLE:
            continue
        target = prop.get("items", prop)  # a selection inside a list applies to each item
        if "$ref" in target:
            target = _schemas()[target["$ref"]]
        if "properties" in target:
            check_fields(sub, target)
        elif "additionalProperties" not in target:  # a map's keys are the caller's own
            raise _bad_fields(f"{name}({','.join(sub.children)})")


def require_valid_fields(spec: str | None, *, schema: str) -> None:
    """Refuse a bad ``fields`` before a write is done, not after (the answer would be lost)."""
    if spec is not None and spec.strip():
        check_fields(parse_fields(spec), _schemas()[schema])
