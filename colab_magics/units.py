"""How sizes and durations read in every message: ``3.2 MB``, ``45s``, ``12m``, ``3h05m``."""

from __future__ import annotations


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
