"""Human durations and checkpoint cadences: ``90s``, ``10m``, ``1h30m``, ``500`` (steps)."""

from __future__ import annotations

import dataclasses
import re

from colab_magics.units import format_seconds, plural

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: one or more ``<number><unit>`` parts (``90s``, ``1h30m``, ``0.5h``).

    Raises ``ValueError`` with a message naming the accepted forms.
    """
    compact = text.strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    while pos < len(compact):
        match = _PART.match(compact, pos)
        if not match:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not compact or pos != len(compact):
        raise ValueError(
            f"{text!r} is not a duration: use a number with a unit, like 90s, 10m, 1h or 1h30m"
        )
    return total


@dataclasses.dataclass(frozen=True)
class Cadence:
    """When to checkpoint: every ``seconds`` of wall time, or every ``steps`` steps."""

    seconds: float | None = None
    steps: int | None = None

    def due(self, *, steps_since: int, seconds_since: float) -> bool:
        if self.steps is not None:
            return steps_since >= self.steps
        return self.seconds is not None and seconds_since >= self.seconds

    def describe(self) -> str:
        if self.steps is not None:
            return f"every {plural(self.steps, 'step')}"
        return f"every {format_seconds(self.seconds or 0)}"


def parse_cadence(text: str) -> Cadence:
    """``--every``: a bare whole number is a step count, anything else a duration."""
    stripped = text.strip()
    if stripped.isdigit():
        steps = int(stripped)
        if steps < 1:
            raise ValueError("--every needs at least 1 step")
        return Cadence(steps=steps)
    seconds = parse_duration(stripped)
    if seconds <= 0:
        raise ValueError("--every needs a duration above zero")
    return Cadence(seconds=seconds)
