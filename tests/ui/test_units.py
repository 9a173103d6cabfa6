from __future__ import annotations

import pytest

from colab_magics.units import format_bytes, format_seconds


@pytest.mark.parametrize(
    ("n", "text"),
    [(None, "?"), (0, "0 B"), (999, "999 B"), (1000, "1.0 KB"), (3_200_000, "3.2 MB"),
     (15e9, "15.0 GB"), (2.5e12, "2.5 TB")],
)  # fmt: skip
def test_bytes(n, text):
    assert format_bytes(n) == text


@pytest.mark.parametrize(
    ("s", "text"),
    [(0.25, "0.25s"), (45, "45s"), (600, "10m"), (605, "10m05s"), (3 * 3600 + 300, "3h05m"),
     (-3, "0.00s")],
)  # fmt: skip
def test_seconds(s, text):
    assert format_seconds(s) == text
