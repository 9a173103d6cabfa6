"""A run folder another Drive user can write: what they plant is never run, never written
outside staging, and never half-restored.

The run trains with one client; a second client on the same emulator plays the other writer
(a collaborator on a shared ``--to`` folder, or whoever got write access to it), who adds a
newer checkpoint with md5s that agree with its own manifest (see ``planting.py``).
"""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest
import torch

from colab_magics.checkpoint.api import checkpointed
from colab_magics.checkpoint.drive_store import DriveCheckpointStore
from colab_magics.checkpoint.session import CheckpointUsageError
from colab_magics.drive import connect
from tests.checkpoint.planting import Plant, genuine_blobs, plant, values_json

RUN = "shared-run"
FOLDER = f"colab_magics/checkpoints/{RUN}"


@pytest.fixture
def other(emulator):
    """The other writer: a second client of the same Drive."""
    c = connect(url=emulator.url, token=emulator.token)
    yield c
    c.close()


def _namespace(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    return {
        "w": np.full(4, float(seed)),
        "model": torch.nn.Linear(3, 2),
        "losses": [],
        "seen": set(),
    }


def _train(client, ns, steps: int, *, save=("w", "model", "losses")):
    with checkpointed(RUN, save=list(save), namespace=ns, every="100",
                      store=DriveCheckpointStore(client, FOLDER, run=RUN)) as ckpt:  # fmt: skip
        for step in ckpt.range(steps):
            ns["w"] += 1
            with torch.no_grad():
                ns["model"].weight += 1
            ns["losses"].append(step)
            ns["seen"].add(step)
    return ckpt


def _restore(client, ns, *, save=("w", "model", "losses"), steps: int = 0):
    """A fresh runtime running the cell again; trains up to ``steps`` (none by default)."""
    with checkpointed(RUN, save=list(save), namespace=ns, every="100",
                      store=DriveCheckpointStore(client, FOLDER, run=RUN)) as ckpt:  # fmt: skip
        for _ in ckpt.range(max(steps, ckpt.step)):
            pass
    return ckpt


def _state(ns) -> dict:
    return {
        "w": ns["w"].copy(),
        "model": {k: v.clone() for k, v in ns["model"].state_dict().items()},
        "losses": list(ns["losses"]),
    }


def _same(ns, state) -> bool:
    model = ns["model"].state_dict()
    return (
        np.array_equal(ns["w"], state["w"])
        and all(torch.equal(model[k], v) for k, v in state["model"].items())
        and ns["losses"] == state["losses"]
    )


def _torch_bytes(tree) -> bytes:
    buf = io.BytesIO()
    torch.save(tree, buf)
    return buf.getvalue()


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _plant(other, blobs: dict[str, bytes], **options) -> str:
    return plant(other, FOLDER, RUN, blobs, **options)


def _genuine_blobs(client) -> dict[str, bytes]:
    return genuine_blobs(client, FOLDER)


def _message(ckpt) -> str:
    return ckpt.progress.get("message") or ""


# -- pickle only where the live value needs it -------------------------------------------------

PICKLE_FOR = {
    "array-said-to-be-an-array": ("w", "array"),
    "array-said-to-be-a-pickle": ("w", "pickle"),
    "module-state-in-objects.pkl": ("model", "state_dict"),
    "plain-list-in-objects.pkl": ("losses", "value"),
}


@pytest.mark.parametrize("case", list(PICKLE_FOR), ids=list(PICKLE_FOR))
def test_a_pickle_planted_for_a_variable_that_needs_none_is_never_loaded(
    client, other, tmp_path, case
):
    ns = _namespace()
    _train(client, ns, 2)
    at_2 = _state(ns)
    marker = tmp_path / "marker"
    name, kind = PICKLE_FOR[case]
    genuine = json.loads(_genuine_blobs(client)["values.json"])
    entries = [e for e in genuine["entries"] if e["name"] != name]
    entries.append({"name": name, "kind": kind, "blob": "objects.pkl"})
    planted = _plant(other, {
        "values.json": values_json(entries, genuine["values"]),
        "objects.pkl": pickle.dumps({name: Plant(str(marker))}, protocol=4),
        **{k: v for k, v in _genuine_blobs(client).items() if k != "values.json"},
    })  # fmt: skip

    fresh = _namespace(seed=7)
    ckpt = _restore(client, fresh)
    assert not marker.exists()
    assert ckpt.restored_from.step == 2 and _same(fresh, at_2)
    message = _message(ckpt)
    assert f"skipped {planted}: {name}" in message and "pickle" in message, message


def test_pickle_is_loaded_for_a_variable_that_needs_it_and_said_once(client):
    ns = _namespace()
    _train(client, ns, 2, save=("w", "seen"))
    fresh = _namespace(seed=3)
    ckpt = _restore(client, fresh, save=("w", "seen"))
    assert fresh["seen"] == {0, 1} and ckpt.restored_from.step == 2
    message = _message(ckpt)
    assert f"unpickled seen from drive:{FOLDER}/step-000000002-" in message, message
    again = _restore(client, _namespace(seed=4), save=("w", "seen"))
    assert again.restored_from.step == 2 and "unpickled" not in _message(again)


# -- blob names outside the layout -------------------------------------------------------------


@pytest.mark.parametrize("where", ["absolute", "dot-dot", "nested", "unknown-name", "duplicate"])
def test_a_blob_name_outside_the_layout_invalidates_the_manifest(client, other, tmp_path, where):
    ns = _namespace()
    _train(client, ns, 2)
    at_2 = _state(ns)
    escaped = tmp_path / "escaped.bin"
    genuine = _genuine_blobs(client)
    # Staging is tmp_path/staging/RUN/restore/TAG: four levels up is tmp_path itself.
    hostile = {
        "absolute": str(escaped),
        "dot-dot": "../../../../escaped.bin",
        "nested": "sub/torch.pt",
        "unknown-name": "model.safetensors",
        "duplicate": None,
    }[where]
    blobs = dict(genuine)
    if hostile is not None:
        blobs[hostile] = b"written by the other writer"
    planted = _plant(other, blobs)
    if where == "duplicate":  # the same name twice, with different bytes
        document = json.loads(other.read_bytes(other.stat(f"{FOLDER}/{planted}")))
        twin = other.upload(b"other bytes", f"{FOLDER}/twin", replace=False).file
        document["blobs"].append({"name": "torch.pt", "size": twin.size, "md5": twin.md5,
                                  "file_id": twin.id})  # fmt: skip
        other.upload(json.dumps(document).encode(), f"{FOLDER}/{planted}")

    fresh = _namespace(seed=7)
    ckpt = _restore(client, fresh)
    assert not escaped.exists()
    assert ckpt.restored_from.step == 2 and _same(fresh, at_2)
    assert f"skipped {planted}: " in _message(ckpt) and "blob" in _message(ckpt)


@pytest.mark.parametrize("step", [-1, 2**53 + 1, 3.5, "4", True])
def test_a_manifest_step_out_of_range_is_invalid(client, other, step):
    ns = _namespace()
    _train(client, ns, 2)
    at_2 = _state(ns)
    planted = _plant(other, _genuine_blobs(client), fields={"step": step})
    fresh = _namespace(seed=7)
    ckpt = _restore(client, fresh)
    assert ckpt.restored_from.step == 2 and _same(fresh, at_2)
    assert f"skipped {planted}: " in _message(ckpt) and "step" in _message(ckpt)


# -- all or nothing ----------------------------------------------------------------------------


def _damage(blobs: dict[str, bytes], how: str) -> tuple[dict[str, bytes], str]:
    """The genuine blobs with one entry made unreadable; and the text the reason must hold."""
    blobs = dict(blobs)
    if how == "malformed-json":
        blobs["values.json"] = blobs["values.json"][:-7]
        return blobs, "values.json"
    if how == "truncated-torch":
        blobs["torch.pt"] = blobs["torch.pt"][: len(blobs["torch.pt"]) // 2]
        return blobs, "torch.pt"
    if how == "bad-npz":
        blobs["arrays.npz"] = b"PK\x03\x04 not an npz at all"
        return blobs, "arrays.npz"
    if how == "object-array-npz":
        buf = io.BytesIO()
        np.savez(buf, w=np.array([{"a": 1}, None], dtype=object))
        blobs["arrays.npz"] = buf.getvalue()
        return blobs, "arrays.npz"
    document = json.loads(blobs["values.json"])
    if how == "missing-rng-keys":
        del document["rng"]["python"]
        blobs["values.json"] = json.dumps(document).encode()
        return blobs, "random"
    if how == "rng-wrong-length":
        document["rng"]["python"]["state"] = document["rng"]["python"]["state"][:5]
        blobs["values.json"] = json.dumps(document).encode()
        return blobs, "random"
    if how == "wrong-kind-of-data":  # a tensor where the module's state dict should be
        blobs["torch.pt"] = _torch_bytes({"model": torch.zeros(3)})
        return blobs, "model"
    raise AssertionError(how)


DAMAGE = ["malformed-json", "truncated-torch", "bad-npz", "object-array-npz",
          "missing-rng-keys", "rng-wrong-length", "wrong-kind-of-data"]  # fmt: skip


@pytest.mark.parametrize("how", DAMAGE)
def test_an_unreadable_entry_leaves_live_objects_alone_and_the_older_checkpoint_is_used(
    client, other, how
):
    ns = _namespace()
    _train(client, ns, 2)
    at_2 = _state(ns)
    _train(client, ns, 4)  # the checkpoint whose copy is damaged differs from step 2's
    blobs, why = _damage(_genuine_blobs(client), how)
    planted = _plant(other, blobs)

    fresh = _namespace(seed=7)
    ckpt = _restore(client, fresh)
    message = _message(ckpt)
    assert ckpt.restored_from.step == 4, message  # the genuine step 4, not the planted 5
    assert f"skipped {planted}: " in message and why in message.split(planted)[1], message

    # With no other checkpoint, the run starts at step 0 on exactly the objects it had.
    for f in client.listdir(FOLDER):
        if f.name.startswith("manifest-") and f.name != planted:
            client.delete_ids([f.id])
    fresh = _namespace(seed=7)
    before = _state(fresh)
    ckpt = _restore(client, fresh)
    assert ckpt.restored_from is None and ckpt.step == 0
    assert _same(fresh, before)
    del at_2


def test_an_entry_that_does_not_fit_undoes_the_ones_before_it(client, other):
    ns = _namespace()
    _train(client, ns, 2)
    at_2 = _state(ns)
    blobs = _genuine_blobs(client)
    state = dict(torch.load(io.BytesIO(blobs["torch.pt"]), weights_only=True))
    # The model's weight with the wrong shape: loading it fails after ``w`` (restored in place
    # before it) was already written.
    state["model"] = dict(state["model"], weight=torch.ones(5, 5))
    blobs["torch.pt"] = _torch_bytes(state)
    blobs["arrays.npz"] = _npz_bytes(w=np.full(4, 99.0))
    planted = _plant(other, blobs)

    fresh = _namespace(seed=7)
    w_object = fresh["w"]
    ckpt = _restore(client, fresh)
    assert ckpt.restored_from.step == 2 and _same(fresh, at_2)
    assert fresh["w"] is w_object  # restored in place
    assert f"skipped {planted}: model" in _message(ckpt)

    # Alone, it is refused in one line, and nothing live has changed.
    for f in client.listdir(FOLDER):
        if f.name.startswith("manifest-") and f.name != planted:
            client.delete_ids([f.id])
    fresh = _namespace(seed=7)
    before = _state(fresh)
    with pytest.raises(CheckpointUsageError) as refused:
        _restore(client, fresh)
    assert _same(fresh, before)
    message = str(refused.value)
    assert "\n" not in message and planted in message and "--fresh" in message
