"""Copy the state of notebook variables out of the live objects, and put it back in place.

A variable is captured by the first rule that fits it:

============  ===============================================  =================================
kind          what                                             restored
============  ===============================================  =================================
state_dict    ``state_dict()``/``load_state_dict()`` (torch    ``load_state_dict`` on the same
              modules, optimizers, schedulers, GradScaler...)  object, in place
weights       Keras-style ``get_weights()``/``set_weights()``  ``set_weights``, in place
tensor        a torch tensor                                   copied into the same tensor
array         a NumPy array (not of dtype object)              copied into the same array
value         None, bool, int, float, str, and lists, tuples   the variable is rebound
              and str-keyed dicts of those
pickle        anything else that pickles                       the variable is rebound
============  ===============================================  =================================

Copies go into buffers kept between snapshots (pinned host memory for CUDA tensors), so after
the first snapshot taking one allocates nothing: the stall is the copy itself.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import sys
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from colab_magics.checkpoint.rng import untouched

STATE_DICT, WEIGHTS, TENSOR, ARRAY, VALUE, PICKLE = (
    "state_dict",
    "weights",
    "tensor",
    "array",
    "value",
    "pickle",
)


class CaptureError(ValueError):
    """A variable that cannot be checkpointed; the message says which and why."""


@dataclasses.dataclass
class Entry:
    """One captured variable: its name, how it was captured, and the copied state."""

    name: str
    kind: str
    data: Any


def _torch() -> Any:
    return sys.modules.get("torch")


def _numpy() -> Any:
    return sys.modules.get("numpy")


def is_tensor(obj: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(obj, torch.Tensor)


def is_array(obj: Any) -> bool:
    np = _numpy()
    return np is not None and isinstance(obj, np.ndarray) and obj.dtype != object


def is_plain_value(obj: Any) -> bool:
    """JSON-representable: None, bool, int, float, str, and lists/tuples/str-keyed dicts of them."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return True
    if isinstance(obj, (list, tuple)):
        return all(is_plain_value(item) for item in obj)
    if isinstance(obj, dict):
        return all(isinstance(k, str) and is_plain_value(v) for k, v in obj.items())
    return False


def state_of(obj: Any) -> Any:
    """``obj.state_dict()``; for something iterated (a stateful data loader) drawing nothing
    from the global generators: torchdata's ``StatefulDataLoader`` builds its iterator there
    when it has none, and that draws a seed an unbroken run would not have drawn here."""
    torch = _torch()
    module = torch is not None and isinstance(obj, torch.nn.Module)  # nn.Sequential iterates
    if module or not callable(getattr(obj, "__iter__", None)):
        return obj.state_dict()
    with untouched():
        return obj.state_dict()


class _Never:
    """A type nothing is an instance of (stands for torch.Tensor when torch is not imported)."""


_ATOMS = frozenset({type(None), bool, int, float, str, bytes, complex})


class Capturing(Protocol):
    """What a snapshot needs of a checkpoint kind (:class:`colab_magics.checkpoint.kinds.Kind`)."""

    name: str

    def capture(self, obj: Any) -> Any: ...

    def snapshot(self, live: Any, copy: Callable[[Any], Any]) -> Any: ...


class SnapshotBuffers:
    """Host copies of captured state, reused from one snapshot to the next.

    Memory: one host copy of every tensor and array captured, per buffer set. The persister
    keeps two sets (one being uploaded, one being filled), so snapshots cost at most twice
    the size of the captured state, whatever the number of checkpoints.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple, Any] = {}
        self._needs_sync = False
        self._tensor_type: type = _Never
        self._array_type: type = _Never

    def capture(self, objects: dict[str, Any], kinds: Mapping[str, Capturing]) -> list[Entry]:
        """Copy the state of ``objects`` (name -> live object) into this buffer set, each as
        its kind (``kinds.KINDS[...]``) captures it."""
        self._needs_sync = False
        torch, np = _torch(), _numpy()
        # Looked up once per snapshot, not once per tensor: the copy is the stall, so the
        # walk around it must cost next to nothing.
        self._tensor_type = torch.Tensor if torch is not None else _Never
        self._array_type = np.ndarray if np is not None else _Never
        entries = []
        for name, obj in objects.items():
            kind = kinds[name]
            into_buffers = functools.partial(self._copy, path=(name,))
            data = kind.snapshot(kind.capture(obj), into_buffers)
            entries.append(Entry(name, kind.name, data))
        if self._needs_sync:
            torch.cuda.synchronize()
        return entries

    def _copy(self, tree: Any, path: tuple) -> Any:
        kind = type(tree)
        if kind in _ATOMS:
            return tree  # immutable: nothing to copy
        if isinstance(tree, self._tensor_type):
            return self._copy_tensor(tree, path)
        if isinstance(tree, self._array_type) and tree.dtype != object:
            return self._copy_array(tree, path)
        if isinstance(tree, OrderedDict):
            return OrderedDict((k, self._copy(v, (*path, k))) for k, v in tree.items())
        if isinstance(tree, dict):
            return {k: self._copy(v, (*path, k)) for k, v in tree.items()}
        if isinstance(tree, (list, tuple)):
            items = [self._copy(v, (*path, i)) for i, v in enumerate(tree)]
            return items if isinstance(tree, list) else tuple(items)
        return copy.deepcopy(tree)

    def _copy_tensor(self, tensor: Any, path: tuple) -> Any:
        torch = _torch()
        source = tensor.detach()
        if source.layout != torch.strided:
            return source.clone().cpu()
        buf = self._buffers.get(path)
        if buf is None or buf.shape != source.shape or buf.dtype != source.dtype:
            pin = source.is_cuda and torch.cuda.is_available()
            buf = torch.empty(source.shape, dtype=source.dtype, device="cpu", pin_memory=pin)
            self._buffers[path] = buf
        buf.copy_(source, non_blocking=source.is_cuda)
        self._needs_sync = self._needs_sync or source.is_cuda
        return buf

    def _copy_array(self, array: Any, path: tuple) -> Any:
        np = _numpy()
        buf = self._buffers.get(path)
        if buf is None or buf.shape != array.shape or buf.dtype != array.dtype:
            buf = np.empty_like(array, order="C")
            self._buffers[path] = buf
        np.copyto(buf, array)
        return buf

    def nbytes(self) -> int:
        """Host memory held by this buffer set."""
        total = 0
        for buf in self._buffers.values():
            total += buf.numel() * buf.element_size() if is_tensor(buf) else buf.nbytes
        return total
