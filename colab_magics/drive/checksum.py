"""Which of Drive's checksums a transfer is verified by: the one this CPU hashes fastest.

Drive keeps ``md5Checksum``, ``sha1Checksum`` and ``sha256Checksum`` of binary content (files
resource; the last two "if available": files stored before Drive kept them lack them). Each
catches what verification is for, accidents on the way (a cut, a flipped bit, a truncating
proxy); none stops an attacker who can write the file, since Drive computes them all from
what it holds. What differs is CPU per byte, and on a fast link the hash is the slowest stage
of a verified transfer: with SHA extensions sha1 and sha256 run at about twice md5's rate,
without them sha256 is slower than md5. So the order is measured, once per process.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import time

ALGORITHMS = ("md5", "sha1", "sha256")

_SAMPLE = 1 << 20  # big enough that call overhead is noise, small enough to cost ~5 ms


@dataclasses.dataclass(frozen=True)
class Checksum:
    """A digest and the algorithm it was made with."""

    algorithm: str
    hexdigest: str

    def __str__(self) -> str:
        return f"{self.algorithm} {self.hexdigest}"


@functools.lru_cache(maxsize=1)
def fastest_first() -> tuple[str, ...]:
    """:data:`ALGORITHMS`, quickest on this CPU first (best of three runs each)."""
    sample = bytes(_SAMPLE)
    cost = {}
    for algorithm in ALGORITHMS:
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            hashlib.new(algorithm, sample).digest()
            runs.append(time.perf_counter() - start)
        cost[algorithm] = min(runs)
    return tuple(sorted(ALGORITHMS, key=cost.__getitem__))
