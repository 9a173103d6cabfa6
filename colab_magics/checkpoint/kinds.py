"""The kinds of checkpointed variable, one class each: which objects a kind takes, the state it
captures, the blob that state is written to, the form it must have when read back, and how it
is put back. A new framework's objects need one new class in :data:`KINDS`.

The kinds, first match wins, are listed in :mod:`colab_magics.checkpoint.state`'s docstring.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from typing import Any

from colab_magics.checkpoint.state import (
    ARRAY,
    PICKLE,
    STATE_DICT,
    TENSOR,
    VALUE,
    WEIGHTS,
    CaptureError,
    Entry,
    _numpy,
    _torch,
    is_array,
    is_plain_value,
    is_tensor,
    state_of,
)

VALUES, TORCH, ARRAYS, OBJECTS = "values.json", "torch.pt", "arrays.npz", "objects.pkl"
"""The blobs a snapshot is made of."""


def _torch_safe(tree: Any) -> bool:
    """Whether ``torch.load(weights_only=True)`` reads ``tree`` back: tensors and plain values in
    dicts, lists and tuples (an object of another class would need a pickle)."""
    if is_tensor(tree) or tree is None or isinstance(tree, (bool, int, float, str)):
        return True
    if isinstance(tree, dict):
        return all(isinstance(k, (str, int)) and _torch_safe(v) for k, v in tree.items())
    if isinstance(tree, (list, tuple)):
        return all(_torch_safe(v) for v in tree)
    return False


_MAX_WEIGHTS = 1 << 20
"""More arrays than any model's ``get_weights()`` returns: a count past it is not ours."""


class _NoFit(Exception):
    """Raised by :meth:`Kind.matches` of the last kind, saying why the object fits none."""


def _same_layout(live: Any, saved: Any) -> bool:
    return tuple(live.shape) == tuple(saved.shape) and live.dtype == saved.dtype


class Kind:
    """One way of checkpointing a variable. Subclasses override what differs."""

    name = ""
    rebound = False
    """Restored by rebinding the variable (never in place)."""

    def matches(self, obj: Any) -> bool:
        """Whether this kind takes ``obj`` (the first kind in :data:`KINDS` that does, wins)."""
        raise NotImplementedError

    def capture(self, obj: Any) -> Any:
        """The live object's state (not a copy of it)."""
        return obj

    def snapshot(self, live: Any, copy: Callable[[Any], Any]) -> Any:
        """A private copy of captured ``live`` state, by default through the snapshot's
        reused buffers (``copy``)."""
        return copy(live)

    def blob(self, data: Any) -> str:
        """The blob captured ``data`` is written to."""
        return OBJECTS

    def fits(self, current: Any, data: Any) -> bool:
        """Whether ``data`` is written into the live object ``current`` (else rebound)."""
        return False

    def restore(self, name: str, current: Any, data: Any) -> None:
        """Write ``data`` into ``current``; called only where :meth:`fits`."""
        raise NotImplementedError

    def load_error(self, data: Any) -> str | None:
        """Why ``data`` read back from a blob cannot be restored by this kind, or None."""
        return None

    def to_arrays(self, name: str, data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``.npz`` members ``data`` is written as, and what the snapshot's index keeps
        beside them to read it back."""
        return {name: data}, {}

    def from_arrays(self, name: str, record: dict[str, Any], member: Callable[[str], Any]) -> Any:
        """``data`` back from the ``.npz`` (``member(key)`` reads one member); ``ValueError``
        when ``record`` cannot say how."""
        return member(name)


class StateDict(Kind):
    name = STATE_DICT

    def matches(self, obj: Any) -> bool:
        return callable(getattr(obj, "state_dict", None)) and callable(
            getattr(obj, "load_state_dict", None)
        )

    def capture(self, obj: Any) -> Any:
        return state_of(obj)

    def blob(self, data: Any) -> str:
        return TORCH if _torch_safe(data) else OBJECTS

    def fits(self, current: Any, data: Any) -> bool:
        return True

    def restore(self, name: str, current: Any, data: Any) -> None:
        if current is None:
            raise CaptureError(
                f"{name!r} must exist before its checkpoint can be loaded into it: "
                "create the model/optimizer first, then run the checkpointed cell"
            )
        current.load_state_dict(data)

    def load_error(self, data: Any) -> str | None:
        if not isinstance(data, Mapping):
            return f"the saved state is a {type(data).__name__}, not a dict"
        return None


class Weights(Kind):
    name = WEIGHTS

    def matches(self, obj: Any) -> bool:
        return callable(getattr(obj, "get_weights", None)) and callable(
            getattr(obj, "set_weights", None)
        )

    def capture(self, obj: Any) -> Any:
        return list(obj.get_weights())

    def blob(self, data: Any) -> str:
        return ARRAYS if all(is_array(w) for w in data) else OBJECTS

    def fits(self, current: Any, data: Any) -> bool:
        return True

    def restore(self, name: str, current: Any, data: Any) -> None:
        if current is None:
            raise CaptureError(f"{name!r} must exist before its weights can be restored")
        current.set_weights(data)

    def load_error(self, data: Any) -> str | None:
        if not isinstance(data, (list, tuple)):
            return f"the saved weights are a {type(data).__name__}, not a list"
        return None

    def to_arrays(self, name: str, data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return {f"{name}/{i}": weight for i, weight in enumerate(data)}, {"count": len(data)}

    def from_arrays(self, name: str, record: dict[str, Any], member: Callable[[str], Any]) -> Any:
        count = record.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count < _MAX_WEIGHTS:
            raise ValueError(f"no usable count of weights in {VALUES}")
        return [member(f"{name}/{i}") for i in range(count)]


class Tensor(Kind):
    name = TENSOR

    def matches(self, obj: Any) -> bool:
        return is_tensor(obj)

    def blob(self, data: Any) -> str:
        return TORCH if _torch_safe(data) else OBJECTS

    def fits(self, current: Any, data: Any) -> bool:
        return is_tensor(current) and _same_layout(current, data)

    def restore(self, name: str, current: Any, data: Any) -> None:
        with _torch().no_grad():
            current.copy_(data)

    def load_error(self, data: Any) -> str | None:
        if not is_tensor(data):
            return f"the saved value is a {type(data).__name__}, not a tensor"
        return None


class Array(Kind):
    name = ARRAY

    def matches(self, obj: Any) -> bool:
        return is_array(obj)

    def blob(self, data: Any) -> str:
        return ARRAYS

    def fits(self, current: Any, data: Any) -> bool:
        return is_array(current) and _same_layout(current, data)

    def restore(self, name: str, current: Any, data: Any) -> None:
        _numpy().copyto(current, data)


class Value(Kind):
    name = VALUE
    rebound = True

    def matches(self, obj: Any) -> bool:
        return is_plain_value(obj)

    def blob(self, data: Any) -> str:
        return VALUES if is_plain_value(data) else OBJECTS


class Pickle(Kind):
    name = PICKLE
    rebound = True

    def snapshot(self, live: Any, copy: Callable[[Any], Any]) -> Any:
        # Round-trip through pickle: a deep copy that also proves it still pickles.
        return pickle.loads(pickle.dumps(live))

    def matches(self, obj: Any) -> bool:
        try:
            pickle.dumps(obj)
        except Exception as exc:
            raise _NoFit(str(exc)) from None
        return True


KINDS: dict[str, Kind] = {
    k.name: k for k in (StateDict(), Weights(), Tensor(), Array(), Value(), Pickle())
}
"""Every kind by name, in the order :func:`classify` tries them."""


def by_name(kind_names: Mapping[str, str]) -> dict[str, Kind]:
    """``{variable: kind name}`` as ``{variable: kind}``, for a snapshot's capture."""
    return {name: KINDS[kind] for name, kind in kind_names.items()}


def classify(name: str, obj: Any) -> str:
    """The kind the checkpoint captures ``obj`` as, or ``CaptureError`` saying why none fits."""
    try:
        return next(kind.name for kind in KINDS.values() if kind.matches(obj))
    except _NoFit as exc:
        raise CaptureError(
            f"{name!r} ({type(obj).__name__}) cannot be checkpointed: it has no state_dict(), "
            f"get_weights(), is not an array or plain value, and does not pickle ({exc})"
        ) from None


def fits_in_place(entry: Entry, current: Any) -> bool:
    """Whether :func:`restore_in_place` writes ``entry`` into ``current`` (else it is rebound)."""
    return KINDS[entry.kind].fits(current, entry.data)


def restore_in_place(entry: Entry, current: Any) -> bool:
    """Write ``entry`` into the live object ``current`` where its kind allows; False when the
    variable must be rebound to ``entry.data`` instead."""
    kind = KINDS[entry.kind]
    if not kind.fits(current, entry.data):
        return False
    kind.restore(entry.name, current, entry.data)
    return True


def restore(entry: Entry, namespace: dict[str, Any]) -> None:
    """Put ``entry`` back: in place into the live object where there is one, else rebind."""
    if not restore_in_place(entry, namespace.get(entry.name)):
        namespace[entry.name] = entry.data
