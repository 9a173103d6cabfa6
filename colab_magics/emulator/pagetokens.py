"""Opaque ``files.list`` page tokens, bound to their query and to the listing's shape.

A token is signed (a client cannot forge an offset) and names the query it belongs to and the
last file of the page it follows. When that file no longer sits just before the next page
(a file was added, removed or reordered in front of it), the listing changed shape and the
token is refused with the 400 Drive gives for a bad ``pageToken``; the client lists again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable

from colab_magics.emulator.errors import invalid


class PageTokens:
    """Issues and checks page tokens with a key of its own (tokens die with the server)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def issue(self, query: str, offset: int, last_id: str | None, *, empty: bool = False) -> str:
        """A token for the page at ``offset``; ``empty`` says the page it follows held none."""
        raw = json.dumps({"q": _digest(query), "o": offset, "l": last_id, "e": empty}).encode()
        mac = hmac.new(self._key, raw, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")

    def read(
        self, token: str, query: str, id_at: Callable[[int], str | None]
    ) -> tuple[int, str | None, bool]:
        """Where ``token`` continues: its offset, the id just before it (None at 0), and
        whether the page it follows was empty.

        ``id_at(i)`` is the id now at position ``i`` of the listing.
        """
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, raw = blob[:16], blob[16:]
            good = hmac.compare_digest(mac, hmac.new(self._key, raw, hashlib.sha256).digest()[:16])
            value = json.loads(raw) if good else None
            offset = int(value["o"]) if good else -1
            good = good and value["q"] == _digest(query) and offset >= 0
            last = value["l"] if good else None
            empty = bool(value.get("e")) if good else False
        except (ValueError, KeyError, TypeError, AttributeError):
            good, offset, last, empty = False, -1, None, False
        if good and offset > 0:
            good = last is not None and id_at(offset - 1) == last
        if not good:
            raise invalid("Invalid Value", location="pageToken")
        return offset, last, empty


def _digest(query: str) -> str:
    return hashlib.blake2s(query.encode(), digest_size=8).hexdigest()
