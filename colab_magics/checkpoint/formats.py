"""A snapshot on disk as files anyone can open without this package.

====================  =======================================================================
blob                  holds
====================  =======================================================================
``values.json``       the index (which variable is where, of what kind), plain values, RNG state
``torch.pt``          ``{name: state_dict or tensor}``: ``torch.load(path, weights_only=True)``
``arrays.npz``        ``{name: array}``, Keras weights as ``name/0``, ``name/1``...: ``numpy.load``
``objects.pkl``       ``{name: object}`` for what has no safer format (trusted data only)
====================  =======================================================================

Reading verifies each blob's md5 against the manifest's before a byte of it is deserialized.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import pickle
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

from colab_magics.checkpoint.state import (
    ARRAY,
    PICKLE,
    STATE_DICT,
    TENSOR,
    VALUE,
    WEIGHTS,
    Entry,
    is_array,
    is_plain_value,
    is_tensor,
)
from colab_magics.sync.local import file_md5

FORMAT_VERSION = 1
VALUES, TORCH, ARRAYS, OBJECTS = "values.json", "torch.pt", "arrays.npz", "objects.pkl"
_TUPLE = "__tuple__"


class IntegrityError(ValueError):
    """A blob whose bytes are not the ones the manifest promised."""


@dataclasses.dataclass(frozen=True)
class BlobInfo:
    """One file of a snapshot: name, size and md5 as written."""

    name: str
    size: int
    md5: str


class _HashingWriter(io.RawIOBase):
    """A write-only file that computes md5 and size of what passes through it."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.md5 = hashlib.md5()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._out.write(view)
        self.md5.update(view)
        self.size += len(view)
        return len(view)


def _write_blob(folder: str, name: str, dump: Callable[[BinaryIO], None]) -> BlobInfo:
    with open(os.path.join(folder, name), "wb") as raw:
        writer = _HashingWriter(raw)
        dump(writer)
    return BlobInfo(name, writer.size, writer.md5.hexdigest())


def _torch_safe(tree: Any) -> bool:
    """Whether ``torch.load(weights_only=True)`` can read ``tree`` back."""
    if is_tensor(tree) or tree is None or isinstance(tree, (bool, int, float, str)):
        return True
    if isinstance(tree, dict):
        return all(isinstance(k, (str, int)) and _torch_safe(v) for k, v in tree.items())
    if isinstance(tree, (list, tuple)):
        return all(_torch_safe(v) for v in tree)
    return False


def _encode_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return {_TUPLE: [_encode_value(v) for v in value]}
    if isinstance(value, list):
        return [_encode_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode_value(v) for k, v in value.items()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_TUPLE}:
            return tuple(_decode_value(v) for v in value[_TUPLE])
        return {k: _decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    return value


def write_snapshot(entries: list[Entry], rng: dict[str, Any], folder: str) -> list[BlobInfo]:
    """Serialize ``entries`` and ``rng`` into ``folder``; returns the blobs written."""
    os.makedirs(folder, exist_ok=True)
    index, values, tensors, arrays, objects = [], {}, {}, {}, {}
    for entry in entries:
        if entry.kind in (STATE_DICT, TENSOR) and _torch_safe(entry.data):
            tensors[entry.name], blob = entry.data, TORCH
        elif entry.kind == ARRAY:
            arrays[entry.name], blob = entry.data, ARRAYS
        elif entry.kind == WEIGHTS and all(is_array(w) for w in entry.data):
            for i, weight in enumerate(entry.data):
                arrays[f"{entry.name}/{i}"] = weight
            blob = ARRAYS
        elif entry.kind == VALUE and is_plain_value(entry.data):
            values[entry.name], blob = _encode_value(entry.data), VALUES
        else:
            objects[entry.name], blob = entry.data, OBJECTS
        record = {"name": entry.name, "kind": entry.kind, "blob": blob}
        if entry.kind == WEIGHTS:
            record["count"] = len(entry.data)
        index.append(record)

    blobs = []
    if tensors:
        torch = sys.modules["torch"]
        blobs.append(_write_blob(folder, TORCH, lambda f: torch.save(tensors, f)))
    if arrays:
        np = sys.modules["numpy"]
        blobs.append(_write_blob(folder, ARRAYS, lambda f: np.savez(f, **arrays)))
    if objects:
        blobs.append(_write_blob(folder, OBJECTS, lambda f: pickle.dump(objects, f, protocol=4)))
    document = {"format": FORMAT_VERSION, "entries": index, "values": values, "rng": rng}
    payload = json.dumps(document, allow_nan=True).encode()
    blobs.append(_write_blob(folder, VALUES, lambda f: f.write(payload)))
    return blobs


def read_snapshot(folder: str, expected_md5: dict[str, str]) -> tuple[list[Entry], dict[str, Any]]:
    """Entries and RNG state from ``folder``, each blob verified against ``expected_md5`` first.

    Raises :class:`IntegrityError` naming the first blob that is missing or differs.
    """
    for name, md5 in expected_md5.items():
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            raise IntegrityError(f"{name} is missing")
        actual = file_md5(path)
        if actual != md5:
            raise IntegrityError(f"{name} has md5 {actual}, the manifest says {md5}")
    if VALUES not in expected_md5:
        raise IntegrityError(f"the manifest lists no {VALUES}")
    with open(os.path.join(folder, VALUES), "rb") as f:
        document = json.load(f)
    if document.get("format") != FORMAT_VERSION:
        raise IntegrityError(f"unknown snapshot format {document.get('format')!r}")

    loaded: dict[str, Any] = {}

    def blob(name: str) -> Any:
        if name not in expected_md5:
            raise IntegrityError(f"{name} is used but not listed in the manifest")
        if name not in loaded:
            path = os.path.join(folder, name)
            if name == TORCH:
                import torch

                try:
                    loaded[name] = torch.load(path, map_location="cpu", weights_only=True)
                except pickle.UnpicklingError:  # weights_only refused what is not tensors
                    raise IntegrityError(
                        f"{TORCH} holds more than tensors: weights_only=True refused it"
                    ) from None
            elif name == ARRAYS:
                import numpy as np

                with np.load(path, allow_pickle=False) as npz:
                    loaded[name] = {key: npz[key] for key in npz.files}
            else:
                with open(path, "rb") as f:
                    loaded[name] = pickle.load(f)  # md5 verified above: our own bytes
        return loaded[name]

    entries = []
    for record in document["entries"]:
        name, kind, where = record["name"], record["kind"], record["blob"]
        if where == VALUES:
            data = _decode_value(document["values"][name])
        elif kind == WEIGHTS and where == ARRAYS:
            data = [blob(ARRAYS)[f"{name}/{i}"] for i in range(record["count"])]
        else:
            data = blob(where)[name]
        entries.append(Entry(name, kind, data))
    return entries, document["rng"]


__all__ = [
    "ARRAYS",
    "OBJECTS",
    "PICKLE",
    "TORCH",
    "VALUES",
    "BlobInfo",
    "IntegrityError",
    "read_snapshot",
    "write_snapshot",
]
