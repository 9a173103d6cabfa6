"""A snapshot on disk as files anyone can open without this package.

====================  =======================================================================
blob                  holds
====================  =======================================================================
``values.json``       the index (which variable is where, of what kind), plain values, RNG state
``torch.pt``          ``{name: state_dict or tensor}``: ``torch.load(path, weights_only=True)``
``arrays.npz``        ``{name: array}``, Keras weights as ``name/0``, ``name/1``...: ``numpy.load``
``objects.pkl``       ``{name: object}`` for what has no safer format
====================  =======================================================================

Reading verifies each blob's md5 against the manifest's before a byte of it is deserialized,
and reads a variable only from the blob its live value would be written to (``blob_for``):
whoever can write the run's folder can also write md5s that agree, so the live value decides
what is trusted. ``objects.pkl`` is unpickled only for a variable whose live value needs pickle.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import pickle
import sys
import zipfile
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from colab_magics.checkpoint import priority
from colab_magics.checkpoint.batches import check_state
from colab_magics.checkpoint.kinds import ARRAYS, KINDS, OBJECTS, TORCH, VALUES
from colab_magics.checkpoint.rng import check_rng
from colab_magics.checkpoint.state import (
    PICKLE,
    Entry,
)
from colab_magics.sync.local import file_md5

FORMAT_VERSION = 1
BLOB_NAMES = frozenset({VALUES, TORCH, ARRAYS, OBJECTS})
"""Every file a snapshot is made of: the only names a manifest may list."""
_TUPLE = "__tuple__"
_PIECE = 16 << 20  # bytes hashed and written as one piece of a persist's work


class IntegrityError(ValueError):
    """A snapshot that cannot be restored as it is: bytes other than the manifest promised,
    unreadable, or not what the live variables accept. The message says which and why."""


@dataclasses.dataclass(frozen=True)
class BlobInfo:
    """One file of a snapshot: name, size and md5 as written."""

    name: str
    size: int
    md5: str


class _HashingWriter(io.RawIOBase):
    """A write-only file that computes md5 and size of what passes through it, in one pass.

    Each piece of up to 16 MiB is hashed and written through :func:`priority.run`, so a persist
    that falls behind finishes at training's priority (see ``persister``)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.md5 = hashlib.md5()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        for start in range(0, len(view), _PIECE):
            priority.run(self._put, view[start : start + _PIECE])
        return len(view)

    def _put(self, piece: memoryview) -> None:
        self._out.write(piece)
        self.md5.update(piece)
        self.size += len(piece)


def _write_blob(folder: str, name: str, dump: Callable[[BinaryIO], None]) -> BlobInfo:
    with open(os.path.join(folder, name), "wb") as raw:
        writer = _HashingWriter(raw)
        dump(writer)
    return BlobInfo(name, writer.size, writer.md5.hexdigest())


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


def blob_for(kind: str, data: Any) -> str:
    """The blob a variable of ``kind`` whose captured state is ``data`` is written to."""
    return KINDS[kind].blob(data)


def live_state(kind: str, obj: Any) -> Any:
    """What :func:`blob_for` looks at for a live object (its state, not a copy of it)."""
    return KINDS[kind].capture(obj)


def write_snapshot(entries: list[Entry], rng: dict[str, Any], folder: str) -> list[BlobInfo]:
    """Serialize ``entries`` and ``rng`` into ``folder``; returns the blobs written."""
    os.makedirs(folder, exist_ok=True)
    index, values, tensors, arrays, objects = [], {}, {}, {}, {}
    for entry in entries:
        blob = blob_for(entry.kind, entry.data)
        record = {"name": entry.name, "kind": entry.kind, "blob": blob}
        if blob == TORCH:
            tensors[entry.name] = entry.data
        elif blob == ARRAYS:
            members, extra = KINDS[entry.kind].to_arrays(entry.name, entry.data)
            arrays.update(members)
            record.update(extra)
        elif blob == VALUES:
            values[entry.name] = _encode_value(entry.data)
        else:
            objects[entry.name] = entry.data
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


def verify_blobs(folder: str, expected_md5: Mapping[str, str]) -> None:
    """Raise :class:`IntegrityError` naming the first blob that is missing or differs."""
    for name, md5 in expected_md5.items():
        if name not in BLOB_NAMES:
            raise IntegrityError(f"{name[:80]!r} is not a snapshot file")
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            raise IntegrityError(f"{name} is missing")
        actual = file_md5(path)
        if actual != md5:
            raise IntegrityError(f"{name} has md5 {actual}, the manifest says {md5}")
    if VALUES not in expected_md5:
        raise IntegrityError(f"the manifest lists no {VALUES}")


def read_snapshot(
    folder: str, expected_md5: Mapping[str, str], wanted: Mapping[str, tuple[str, str]]
) -> tuple[list[Entry], dict[str, Any]]:
    """Entries for the ``wanted`` variables (name -> (kind, blob) of their live values) and the
    RNG state, from ``folder``; each blob verified against ``expected_md5`` first.

    A variable the snapshot holds in another kind or blob than its live value needs is refused,
    never read. Variables the snapshot does not hold are left out; what it holds for names not
    wanted is not read. Raises :class:`IntegrityError` with the first reason found.
    """
    verify_blobs(folder, expected_md5)
    document = _values_document(os.path.join(folder, VALUES))
    reader = _BlobReader(folder, expected_md5)
    records = [r for r in document["entries"] if r["name"] in wanted]
    for record in records:  # every entry checked before any blob is read
        _check_record(record, *wanted[record["name"]])
    entries = []
    for record in records:
        name = record["name"]
        kind, blob = wanted[name]
        entries.append(Entry(name, kind, _entry_data(reader, document, record, kind, blob)))
    try:
        check_rng(document["rng"])
        if "batches" in document["rng"]:
            check_state(document["rng"]["batches"])
    except (ValueError, KeyError, TypeError, IndexError, OverflowError, RuntimeError) as exc:
        detail = f"{exc.args[0]!r} is missing" if isinstance(exc, KeyError) else _first_line(exc)
        raise IntegrityError(
            f"{VALUES}: the random generators' state is not usable ({detail})"
        ) from None
    return entries, document["rng"]


def _values_document(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            document = json.load(f)
    except (ValueError, RecursionError) as exc:
        raise IntegrityError(f"{VALUES} is not readable JSON ({_first_line(exc)})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_VERSION:
        got = document.get("format") if isinstance(document, dict) else None
        raise IntegrityError(f"{VALUES}: unknown snapshot format {got!r}")
    entries, values = document.get("entries"), document.get("values")
    if not isinstance(entries, list) or not isinstance(values, dict):
        raise IntegrityError(f"{VALUES}: no list of entries and table of values")
    if not isinstance(document.get("rng"), dict):
        raise IntegrityError(f"{VALUES}: the random generators' state is missing")
    names = set()
    for record in entries:
        if not (
            isinstance(record, dict)
            and all(isinstance(record.get(k), str) for k in ("name", "kind", "blob"))
        ):
            raise IntegrityError(f"{VALUES}: an entry without a name, kind and blob")
        if record["name"] in names:
            raise IntegrityError(f"{VALUES}: {record['name'][:80]!r} is listed twice")
        names.add(record["name"])
    return document


def _check_record(record: dict[str, Any], kind: str, blob: str) -> None:
    """Refuse an entry saved in another blob or kind than the live value's."""
    name, saved_kind, saved_blob = record["name"], record["kind"], record["blob"]
    if saved_blob != blob:
        if saved_blob == OBJECTS:
            raise IntegrityError(
                f"{name}: saved as a pickle ({OBJECTS}), but its live value ({kind}) needs no "
                "pickle: not unpickled"
            )
        raise IntegrityError(
            f"{name}: saved in {saved_blob[:40]!r}, but its live value ({kind}) is kept in {blob}"
        )
    rebound = saved_kind in KINDS and KINDS[saved_kind].rebound and KINDS[kind].rebound
    if saved_kind != kind and not rebound:
        raise IntegrityError(f"{name}: saved as {saved_kind[:40]!r}, but its live value is {kind}")


def _entry_data(
    reader: _BlobReader, document: dict[str, Any], record: dict[str, Any], kind: str, blob: str
) -> Any:
    """One entry's data, checked to be of the form its kind restores from."""
    name = record["name"]
    if blob == VALUES:
        if name not in document["values"]:
            raise IntegrityError(f"{name}: missing from {VALUES}")
        try:
            return _decode_value(document["values"][name])
        except (TypeError, AttributeError, RecursionError) as exc:
            raise IntegrityError(f"{name}: not a plain value in {VALUES} ({exc})") from None
    if blob == ARRAYS:
        try:
            data = KINDS[kind].from_arrays(name, record, lambda key: reader.member(ARRAYS, key))
        except IntegrityError:
            raise
        except ValueError as exc:
            raise IntegrityError(f"{name}: {exc}") from None
    else:
        data = reader.member(blob, name)
    error = KINDS[kind].load_error(data)
    if error is not None:
        raise IntegrityError(f"{name}: {error}")
    return data


class _BlobReader:
    """Loads each blob once, on first use, in the one safe way for its format."""

    def __init__(self, folder: str, expected_md5: Mapping[str, str]) -> None:
        self.folder = folder
        self.expected_md5 = expected_md5
        self.loaded: dict[str, Any] = {}

    def member(self, blob: str, key: str) -> Any:
        if blob not in self.expected_md5:
            raise IntegrityError(f"{blob} is used but not listed in the manifest")
        if blob not in self.loaded:
            path = os.path.join(self.folder, blob)
            try:
                self.loaded[blob] = _LOADERS[blob](path)
            except IntegrityError:
                raise
            except Exception as exc:  # any failure of a parser (MemoryError too): unreadable
                raise IntegrityError(f"{blob} is not readable ({_first_line(exc)})") from None
        content = self.loaded[blob]
        if blob == ARRAYS:
            return _npz_member(content, key)
        if not isinstance(content, Mapping) or key not in content:
            raise IntegrityError(f"{key}: missing from {blob}")
        return content[key]


def _load_torch(path: str) -> Any:
    import torch

    _check_stored_zip(path, TORCH)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only refused what is not tensors
        raise IntegrityError(
            f"{TORCH} holds more than tensors: weights_only=True refused it"
        ) from None


def _load_npz(path: str) -> Any:
    import numpy as np

    _check_stored_zip(path, ARRAYS)
    npz = np.load(path, allow_pickle=False)
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise IntegrityError(f"{ARRAYS} is not an .npz archive")
    return npz


def _npz_member(npz: Any, key: str) -> Any:
    if f"{key}.npy" not in npz.zip.namelist():
        raise IntegrityError(f"{key}: missing from {ARRAYS}")
    try:
        return npz[key]
    except Exception as exc:  # an object array, or a damaged member
        raise IntegrityError(f"{key}: not readable from {ARRAYS} ({_first_line(exc)})") from None


def _load_pickle(path: str) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)  # only for variables whose live value needs pickle


_LOADERS: dict[str, Callable[[str], Any]] = {
    TORCH: _load_torch,
    ARRAYS: _load_npz,
    OBJECTS: _load_pickle,
}


def _check_stored_zip(path: str, blob: str) -> None:
    """torch.save and np.savez store their members uncompressed: refuse compressed ones (a few
    bytes that inflate to gigabytes) and sizes the file cannot hold."""
    size = os.path.getsize(path)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise IntegrityError(f"{blob} is not readable ({_first_line(exc)})") from None
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.file_size > size:
            raise IntegrityError(
                f"{blob}: member {info.filename[:60]!r} is compressed or larger than the file"
            )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0][:200]


__all__ = [
    "ARRAYS",
    "BLOB_NAMES",
    "OBJECTS",
    "PICKLE",
    "TORCH",
    "VALUES",
    "BlobInfo",
    "IntegrityError",
    "blob_for",
    "live_state",
    "read_snapshot",
    "verify_blobs",
    "write_snapshot",
]
