"""How sizes and durations read in every message: ``3.2 MB``, ``45s``, ``12m``, ``3h05m``."""

from __future__ import annotations

import re


def format_bytes(n: float | None) -> str:
    """Decimal units, as Drive reports quota: ``950 B``, ``3.2 MB``, ``15.0 GB``."""
    if n is None:
        return "?"
    if abs(n) < 1000:
        return f"{n:.0f} B"
    for unit in ("KB", "MB", "GB"):
        n /= 1000
        if abs(n) < 1000:
            return f"{n:.1f} {unit}"
    return f"{n / 1000:.1f} TB"


def format_seconds(seconds: float) -> str:
    """A short human form: ``45s``, ``12m``, ``3h05m``."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes:.0f}m{rest:02.0f}s" if rest >= 1 else f"{minutes:.0f}m"
    hours, rest = divmod(seconds, 3600)
    return f"{hours:.0f}h{rest // 60:02.0f}m"


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``, ``0 files`` (``many`` for irregular plurals)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


_SIZE_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
               "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in ``text``: ``123``, ``500M``, ``10G``, ``1.5GB`` (decimal, as Drive counts) or
    ``2GiB`` (binary). Raises ``ValueError`` naming the accepted forms."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size: use bytes or a number with a unit, like "
                         "500M, 10G or 2GiB")  # fmt: skip
    return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()])
