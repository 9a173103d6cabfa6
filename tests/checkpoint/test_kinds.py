"""Checkpoint kinds as one table: a kind is one class in ``kinds.KINDS``; classifying,
choosing the blob, checking what is read back and restoring all go through it."""

from __future__ import annotations

import numpy as np
import pytest

from colab_magics.checkpoint import formats, kinds, rng, state


class Counter:
    """A framework object with its own state methods, none of the built-in kinds' shapes."""

    def __init__(self, n: int = 0) -> None:
        self.n = n

    def dump(self) -> dict:
        return {"n": self.n}

    def load(self, saved: dict) -> None:
        self.n = saved["n"]


class CounterKind(kinds.Kind):
    name = "counter"

    def matches(self, obj):
        return isinstance(obj, Counter)

    def capture(self, obj):
        return obj.dump()

    def fits(self, current, data):
        return isinstance(current, Counter)

    def restore(self, name, current, data):
        current.load(data)

    def load_error(self, data):
        return None if isinstance(data, dict) else "not a counter's state"


@pytest.fixture
def with_counter(monkeypatch):
    table = {"counter": CounterKind(), **kinds.KINDS}  # tried before the catch-all pickle
    monkeypatch.setattr(kinds, "KINDS", table)
    monkeypatch.setattr(formats, "KINDS", table)


def test_a_new_kind_is_one_class(with_counter, tmp_path):
    live = Counter(7)
    kind = kinds.classify("c", live)
    assert kind == "counter"
    entry = state.Entry("c", kind, kinds.KINDS[kind].capture(live))
    blobs = formats.write_snapshot([entry], rng.capture_rng(), str(tmp_path))
    wanted = {"c": (kind, formats.blob_for(kind, formats.live_state(kind, live)))}
    entries, _ = formats.read_snapshot(str(tmp_path), {b.name: b.md5 for b in blobs}, wanted)
    target = Counter(0)
    kinds.restore(entries[0], {"c": target})
    assert target.n == 7


def test_kinds_keep_their_order_and_errors():
    assert list(kinds.KINDS) == ["state_dict", "weights", "tensor", "array", "value", "pickle"]
    assert kinds.classify("a", np.zeros(2)) == "array" and kinds.classify("v", [1, "x"]) == "value"
    with pytest.raises(state.CaptureError, match="'g' .*does not pickle"):
        kinds.classify("g", (i for i in range(2)))
    arr = np.zeros(3)
    assert kinds.restore_in_place(state.Entry("a", "array", np.ones(3)), arr) and arr.sum() == 3
    assert not kinds.fits_in_place(state.Entry("a", "array", np.ones(4)), arr)
