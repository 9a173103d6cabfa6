"""What ``ckpt.batches`` needs to know about a torch ``DataLoader``, kept apart from the loop.

Skipping batches on resume happens at the index level: the loader's batch sampler (or its
sampler, without automatic batching) is wrapped for one ``iter()`` so that the first index
lists are dropped before the loader fetches anything. ``DataLoader`` refuses new samplers once
built (its ``__setattr__``), so the wrapper is put in with ``object.__setattr__`` for the
``iter()`` call only and the loader is left as it was.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from typing import Any

_MASK64 = (1 << 64) - 1
_TENSOR = "__tensor__"
_TUPLE = "__tuple__"
_DTYPES = ("uint8", "int8", "int16", "int32", "int64", "float32", "float64", "bool")


def _torch() -> Any:
    return sys.modules.get("torch")


def is_stateful(obj: Any) -> bool:
    """Whether ``obj`` saves its own position (torchdata's ``StatefulDataLoader`` and alike)."""
    return callable(getattr(obj, "state_dict", None)) and callable(
        getattr(obj, "load_state_dict", None)
    )


def is_index_loader(loader: Any) -> bool:
    """A torch ``DataLoader`` over a map-style dataset: its batches are lists of indices."""
    torch = _torch()
    if torch is None:
        return False
    data = torch.utils.data
    return isinstance(loader, data.DataLoader) and not isinstance(
        loader.dataset, data.IterableDataset
    )


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's shuffle: the run's seed and the epoch number, well mixed."""
    x = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + 1) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (x ^ (x >> 31)) & ((1 << 63) - 1)


def owned_shuffle(loader: Any) -> Any | None:
    """The ``RandomSampler`` of a ``DataLoader(shuffle=True)`` built without a generator: its
    order is then ours to seed per epoch (it would otherwise draw a seed from torch's global
    generator each epoch). None for any other sampler, which is respected as it is."""
    torch = _torch()
    sampler = getattr(loader, "sampler", None)
    if torch is None or not isinstance(sampler, torch.utils.data.RandomSampler):
        return None
    return sampler if sampler.generator is None else None


def user_generators(loader: Any, skip: Any = None) -> list[Any]:
    """The torch generators a loader's iteration draws from, other than ``skip``: the
    loader's own (its workers' base seed) and its samplers' (the order)."""
    torch = _torch()
    if torch is None:
        return []
    holders = [loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)]
    holders.append(getattr(holders[2], "sampler", None))
    found: dict[int, Any] = {}
    for holder in holders:
        generator = getattr(holder, "generator", None)
        if isinstance(generator, torch.Generator) and generator is not skip:
            found.setdefault(id(generator), generator)
    return list(found.values())


def generator_states(generators: list[Any]) -> list[str]:
    return [base64.b64encode(g.get_state().numpy().tobytes()).decode("ascii") for g in generators]


def set_generator_states(generators: list[Any], states: list[str]) -> None:
    """Put saved states back; a loader with other generators than when they were saved (its
    options changed between runtimes) keeps its own."""
    if len(generators) != len(states):
        return
    torch = _torch()
    for generator, text in zip(generators, states, strict=True):
        raw = bytearray(base64.b64decode(text, validate=True))
        generator.set_state(torch.frombuffer(raw, dtype=torch.uint8))


class _Skipping:
    """An index iterator that drops its first ``count`` items (on :meth:`skip` or first use)."""

    def __init__(self, inner: Iterator[Any], count: int) -> None:
        self.inner = inner
        self.count = count

    def skip(self) -> None:
        while self.count:
            self.count -= 1
            next(self.inner, None)

    def __iter__(self) -> _Skipping:
        return self

    def __next__(self) -> Any:
        self.skip()
        return next(self.inner)


class _SkipFirst:
    """A sampler standing in for the loader's for one ``iter()``: the first ``count`` index
    lists of its next iteration are dropped; later iterations (persistent workers keep the
    sampler they were started with) pass everything through."""

    def __init__(self, inner: Any, count: int) -> None:
        self.inner = inner
        self.count = count
        self.current: _Skipping | None = None

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> _Skipping:
        self.current = _Skipping(iter(self.inner), self.count)
        return self.current


def iter_skipping(loader: Any, count: int) -> Iterator[Any]:
    """``iter(loader)`` positioned after its first ``count`` batches, which are never loaded.

    The index lists are dropped before this returns (a loader with workers asks its sampler
    for the first batches as its iterator starts), so whatever the sampler draws happens here.
    """
    if count <= 0:
        return iter(loader)
    name = "batch_sampler" if loader.batch_sampler is not None else "sampler"
    original = getattr(loader, name)
    wrapper = _SkipFirst(original, count)
    if getattr(loader, "_iterator", None) is not None:
        # Persistent workers reuse the iterator they started with, and its sampler.
        loader._iterator = None
    object.__setattr__(loader, name, wrapper)
    try:
        iterator = iter(loader)
    finally:
        object.__setattr__(loader, name, original)
    if wrapper.current is not None:
        wrapper.current.skip()
    wrapper.count = 0
    return iterator


def encode_state(tree: Any) -> Any:
    """A stateful loader's ``state_dict()`` as JSON values (tensors as base64 bytes)."""
    torch = _torch()
    if torch is not None and isinstance(tree, torch.Tensor):
        data = tree.detach().cpu().contiguous()
        raw = data.view(torch.uint8).numpy().tobytes() if data.numel() else b""
        dtype = str(data.dtype).removeprefix("torch.")
        if dtype not in _DTYPES:
            raise ValueError(f"a {dtype} tensor in the loader's state")
        return {_TENSOR: {"dtype": dtype, "shape": list(data.shape), "data": _b64(raw)}}
    if isinstance(tree, tuple):
        return {_TUPLE: [encode_state(v) for v in tree]}
    if isinstance(tree, list):
        return [encode_state(v) for v in tree]
    if isinstance(tree, dict):
        if not all(isinstance(k, str) for k in tree):
            raise ValueError("the loader's state has keys that are not strings")
        return {k: encode_state(v) for k, v in tree.items()}
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise ValueError(f"a {type(tree).__name__} in the loader's state")


def decode_state(tree: Any) -> Any:
    """Back from :func:`encode_state`; ``ValueError`` for anything it would not have written."""
    if isinstance(tree, dict):
        if set(tree) == {_TENSOR}:
            return _decode_tensor(tree[_TENSOR])
        if set(tree) == {_TUPLE}:
            return tuple(decode_state(v) for v in _list(tree[_TUPLE]))
        return {k: decode_state(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [decode_state(v) for v in tree]
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise ValueError(f"a {type(tree).__name__} in the loader's saved state")


def _decode_tensor(spec: Any) -> Any:
    torch = _torch()
    if torch is None:
        raise ValueError("the loader's saved state holds tensors and torch is not imported")
    if not isinstance(spec, dict) or spec.get("dtype") not in _DTYPES:
        raise ValueError("a tensor of an unknown type in the loader's saved state")
    shape = [int(n) for n in _list(spec.get("shape"))]
    raw = bytearray(base64.b64decode(spec.get("data", ""), validate=True))
    dtype = getattr(torch, spec["dtype"])
    flat = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
    return flat.view(dtype).reshape(shape).clone()


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("a malformed list in the loader's saved state")
    return value


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
