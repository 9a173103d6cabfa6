"""The runtime's deadline: its age (from the runtime itself) against its expected lifetime.

A lifetime is assumed only where the runtime's kind is known: a Colab runtime lives at most
12 hours (24 with Pro: say ``--lifetime 24h``). Anywhere else there is no deadline unless a
lifetime is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from colab_magics.checkpoint.durations import parse_duration
from colab_magics.runtime import COLAB, runtime_age, runtime_kind
from colab_magics.settings import get
from colab_magics.units import format_seconds

DEFAULT_LIFETIMES = {COLAB: 12 * 3600.0}
"""Seconds a runtime of a known kind lives at most (Colab's free tier: 12 h)."""
NO_LIFETIME = ("none", "off", "no")


class Deadline:
    """Whether there is still time for another checkpoint interval before the runtime ends.

    ``lifetime`` None: no known end, never near.
    """

    def __init__(
        self, lifetime: float | None, margin: float, *, age: Callable[[], float] = runtime_age
    ) -> None:
        self.lifetime = lifetime
        self.margin = margin
        self._age = age

    def seconds_left(self) -> float:
        return math.inf if self.lifetime is None else self.lifetime - self._age()

    def near(self, persist_seconds: float) -> bool:
        """True once what is left is under the margin plus one measured persist."""
        return self.seconds_left() < self.margin + persist_seconds


def runtime_deadline(
    lifetime: str | None, margin: str | None, *, age: Callable[[], float] = runtime_age
) -> Deadline:
    """The deadline for ``--lifetime``/``--margin``: either None means its setting; a
    lifetime still None is this runtime kind's default (none where the kind is unknown);
    ``"none"`` means no deadline.

    Raises ``ValueError`` for a bad duration or a lifetime not longer than the margin (which
    would stop the run before its first step).
    """
    lifetime = lifetime if lifetime is not None else get("lifetime")
    margin = margin if margin is not None else get("margin")
    margin_s = parse_duration(margin)
    lifetime_s: float | None
    if lifetime is None:
        kind = runtime_kind()
        lifetime_s = None if kind is None else DEFAULT_LIFETIMES.get(kind)
    elif lifetime.strip().lower() in NO_LIFETIME:
        lifetime_s = None
    else:
        lifetime_s = parse_duration(lifetime)
    if lifetime_s is not None and lifetime_s <= margin_s:
        raise ValueError(
            f"--lifetime {lifetime or format_seconds(lifetime_s)} is not longer than --margin "
            f"{margin}: the run would stop before its first step; give the runtime's whole "
            "lifetime (e.g. 12h, or 24h on Colab Pro) and a smaller margin"
        )
    return Deadline(lifetime_s, margin_s, age=age)
