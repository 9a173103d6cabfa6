from __future__ import annotations

import pytest

from colab_magics.checkpoint.durations import Cadence, parse_cadence, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("1h", 3600),
        ("1h30m", 5400),
        ("0.5h", 1800),
        ("250ms", 0.25),
        (" 2 m ", 120),
        ("1d", 86400),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "m", "10x", "1h-5m", "ten minutes", "5m3"])
def test_bad_durations_say_what_is_accepted(text):
    with pytest.raises(ValueError, match="like 90s, 10m, 1h"):
        parse_duration(text)


def test_cadence_by_steps_or_time():
    assert parse_cadence("500") == Cadence(steps=500)
    assert parse_cadence("10m") == Cadence(seconds=600)
    by_steps, by_time = Cadence(steps=3), Cadence(seconds=60)
    assert not by_steps.due(steps_since=2, seconds_since=1e9)
    assert by_steps.due(steps_since=3, seconds_since=0)
    assert not by_time.due(steps_since=10**6, seconds_since=59.9)
    assert by_time.due(steps_since=0, seconds_since=60)
    with pytest.raises(ValueError):
        parse_cadence("0")


def test_a_cadence_reads_in_the_singular_for_one_step():
    assert parse_cadence("1").describe() == "every 1 step"
    assert parse_cadence("500").describe() == "every 500 steps"
