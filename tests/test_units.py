"""How sizes and counts read and are read back."""

from __future__ import annotations

import pytest

from colab_magics.units import parse_size, plural


@pytest.mark.parametrize(
    ("text", "size"),
    [("123", 123), ("500M", 500_000_000), ("10G", 10_000_000_000), ("1.5GB", 1_500_000_000),
     ("2GiB", 2 * 1024**3), ("64k", 64_000), ("1 T", 10**12), ("0.5mib", 512 * 1024)],
)  # fmt: skip
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-5G", "10X", "G", "1e9", "5 G B"])
def test_bad_sizes_say_what_is_accepted(text):
    with pytest.raises(ValueError, match="like 500M, 10G or 2GiB"):
        parse_size(text)


def test_plural():
    assert [plural(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    assert plural(2, "entry", "entries") == "2 entries"
