"""Capture, serialize, verify and restore notebook state with real torch and NumPy."""

from __future__ import annotations

import json
import os
import pickle
import random

import numpy as np
import pytest
import torch

from colab_magics.checkpoint import formats, kinds, rng, state


class KerasLike:
    """Keras-style model: weights only through get_weights()/set_weights()."""

    def __init__(self) -> None:
        self.w = [np.ones((2, 3)), np.arange(4.0)]

    def get_weights(self):
        return [w.copy() for w in self.w]

    def set_weights(self, weights):
        self.w = [np.array(w) for w in weights]


class Opaque:
    def __init__(self, n: int) -> None:
        self.n = n


def _train_a_bit(model, opt, steps: int) -> None:
    for _ in range(steps):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def _namespace() -> dict:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    _train_a_bit(model, opt, 3)
    return {
        "model": model,
        "opt": opt,
        "sched": torch.optim.lr_scheduler.StepLR(opt, step_size=2),
        "w": torch.arange(6.0).reshape(2, 3),
        "arr": np.arange(10, dtype=np.float32),
        "keras": KerasLike(),
        "history": [0.5, 0.25, (1, "a")],
        "config": {"lr": 0.01, "name": "run"},
        "opaque": Opaque(7),
    }


def _capture(ns: dict, buffers: state.SnapshotBuffers | None = None) -> list[state.Entry]:
    found = {name: kinds.classify(name, obj) for name, obj in ns.items()}
    return (buffers or state.SnapshotBuffers()).capture(ns, kinds.by_name(found))


def test_classify_picks_the_safest_kind():
    ns = _namespace()
    found = {name: kinds.classify(name, obj) for name, obj in ns.items()}
    assert found == {
        "model": "state_dict",
        "opt": "state_dict",
        "sched": "state_dict",
        "w": "tensor",
        "arr": "array",
        "keras": "weights",
        "history": "value",
        "config": "value",
        "opaque": "pickle",
    }


def test_unpicklable_object_is_refused_with_its_name():
    with pytest.raises(state.CaptureError, match="'gen'.*generator"):
        kinds.classify("gen", (i for i in range(3)))


def test_snapshot_is_a_copy_not_a_view_of_live_state():
    ns = _namespace()
    entries = {e.name: e for e in _capture(ns)}
    before = entries["model"].data["0.weight"].clone()
    _train_a_bit(ns["model"], ns["opt"], 2)
    ns["arr"] += 1
    assert torch.equal(entries["model"].data["0.weight"], before)
    assert not torch.equal(ns["model"].state_dict()["0.weight"], before)
    assert entries["arr"].data[0] == 0


def test_buffers_are_reused_between_snapshots():
    ns = _namespace()
    buffers = state.SnapshotBuffers()
    first = {e.name: e for e in _capture(ns, buffers)}
    size = buffers.nbytes()
    _train_a_bit(ns["model"], ns["opt"], 1)
    second = {e.name: e for e in _capture(ns, buffers)}
    assert buffers.nbytes() == size
    assert first["model"].data["0.weight"].data_ptr() == second["model"].data["0.weight"].data_ptr()
    assert torch.equal(second["model"].data["0.weight"], ns["model"].state_dict()["0.weight"])


def test_round_trip_restores_in_place(tmp_path):
    ns = _namespace()
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    saved_rng = rng.capture_rng()
    blobs = formats.write_snapshot(_capture(ns), saved_rng, str(tmp_path))
    expected = {b.name: b.md5 for b in blobs}
    assert set(expected) == {"values.json", "torch.pt", "arrays.npz", "objects.pkl"}
    for blob in blobs:
        assert os.path.getsize(tmp_path / blob.name) == blob.size
        assert formats.file_md5(str(tmp_path / blob.name)) == blob.md5
    draws = (random.random(), np.random.rand(), torch.rand(1).item())

    # A fresh "runtime": new objects, different weights, other RNG states.
    torch.manual_seed(99)
    fresh = _namespace()
    _train_a_bit(fresh["model"], fresh["opt"], 5)
    fresh.update(arr=np.zeros(10, dtype=np.float32), history=None, keras=KerasLike())
    fresh["keras"].w = [np.zeros((2, 3)), np.zeros(4)]
    live_model, live_w, live_arr = fresh["model"], fresh["w"], fresh["arr"]
    fresh["w"].zero_()
    random.seed(1)

    wanted = {name: (kind, formats.blob_for(kind, formats.live_state(kind, fresh[name])))
              for name, kind in ((n, kinds.classify(n, o)) for n, o in ns.items())}  # fmt: skip
    entries, got_rng = formats.read_snapshot(str(tmp_path), expected, wanted)
    for entry in entries:
        kinds.restore(entry, fresh)
    rng.restore_rng(got_rng)

    assert fresh["model"] is live_model and fresh["w"] is live_w and fresh["arr"] is live_arr
    for key, value in ns["model"].state_dict().items():
        assert torch.equal(fresh["model"].state_dict()[key], value)
    assert (
        fresh["opt"]
        .state_dict()["state"][0]["exp_avg"]
        .equal(ns["opt"].state_dict()["state"][0]["exp_avg"])
    )
    assert torch.equal(fresh["w"], ns["w"])
    assert np.array_equal(fresh["arr"], ns["arr"])
    assert all(np.array_equal(a, b) for a, b in zip(fresh["keras"].w, ns["keras"].w, strict=True))
    assert fresh["history"] == [0.5, 0.25, (1, "a")]
    assert fresh["opaque"].n == 7
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == draws


def test_blobs_open_without_this_package(tmp_path):
    ns = _namespace()
    blobs = formats.write_snapshot(_capture(ns), rng.capture_rng(), str(tmp_path))
    assert {b.name for b in blobs} >= {"torch.pt", "arrays.npz", "values.json"}
    tensors = torch.load(tmp_path / "torch.pt", weights_only=True)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    model.load_state_dict(tensors["model"])
    with np.load(tmp_path / "arrays.npz", allow_pickle=False) as arrays:
        assert np.array_equal(arrays["arr"], ns["arr"])
        assert np.array_equal(arrays["keras/1"], np.arange(4.0))
    values = json.loads((tmp_path / "values.json").read_text())
    assert values["values"]["config"] == {"lr": 0.01, "name": "run"}


def test_a_changed_byte_is_caught_before_deserializing(tmp_path):
    ns = {"opaque": Opaque(1), "arr": np.arange(3.0)}
    blobs = formats.write_snapshot(_capture(ns), rng.capture_rng(), str(tmp_path))
    expected = {b.name: b.md5 for b in blobs}
    # Replace the pickle with one that would run code if it were ever loaded.
    (tmp_path / "objects.pkl").write_bytes(pickle.dumps({"opaque": Opaque(666)}))
    with pytest.raises(formats.IntegrityError, match="objects.pkl has md5"):
        formats.read_snapshot(str(tmp_path), expected, {})
    os.remove(tmp_path / "arrays.npz")
    with pytest.raises(formats.IntegrityError, match="arrays.npz is missing"):
        formats.read_snapshot(str(tmp_path), expected, {})


def test_state_dict_target_must_exist_to_restore_into():
    entry = state.Entry("model", state.STATE_DICT, {"w": torch.zeros(1)})
    with pytest.raises(state.CaptureError, match="'model' must exist"):
        kinds.restore(entry, {})


def test_md5_taken_while_writing_is_the_files_and_big_tensors_round_trip_bit_exact(tmp_path):
    """Blobs are hashed piece by piece as they are written (16 MiB pieces): what the manifest
    records must be the md5 of the file on disk, and the bytes read back the bytes captured."""
    gen = torch.Generator().manual_seed(3)
    ns = {
        "big": torch.randn(5 << 20, generator=gen),  # 20 MiB: two pieces and a part
        "odd": torch.randn(3, 7, generator=gen).t(),  # not contiguous
        "arr": np.random.default_rng(3).standard_normal((3 << 20) // 8 + 5),
    }
    entries = _capture(ns)
    blobs = formats.write_snapshot(entries, rng.capture_rng(), str(tmp_path))
    for blob in blobs:
        path = str(tmp_path / blob.name)
        assert (formats.file_md5(path), os.path.getsize(path)) == (blob.md5, blob.size)
    expected = {b.name: b.md5 for b in blobs}
    wanted = {n: (k, formats.blob_for(k, ns[n])) for n, k in (("big", "tensor"), ("odd", "tensor"),
              ("arr", "array"))}  # fmt: skip
    got = {e.name: e.data for e in formats.read_snapshot(str(tmp_path), expected, wanted)[0]}
    assert torch.equal(got["big"], ns["big"]) and torch.equal(got["odd"], ns["odd"])
    assert got["big"].numpy().tobytes() == ns["big"].numpy().tobytes()
    assert got["arr"].tobytes() == ns["arr"].tobytes()
