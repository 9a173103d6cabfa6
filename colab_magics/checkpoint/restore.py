"""Putting a checkpoint back into the live variables: all of it, or none of it.

Every entry is first read into new objects (``formats.read_snapshot``, which takes each
variable only from the blob its live value would be written to); only then is anything
assigned. Should an assignment still fail (a state dict of another shape), what was already
assigned is put back from a copy taken just before, so the live objects are as they were.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from colab_magics.checkpoint import kinds, rng, state
from colab_magics.checkpoint.formats import (
    OBJECTS,
    IntegrityError,
    blob_for,
    live_state,
    read_snapshot,
)

_MISSING = object()
_REFILLABLE = (list, dict, set, bytearray)


class DoesNotFit(IntegrityError):
    """A readable checkpoint whose state the live objects do not take (another shape...)."""


class Targets:
    """Where restored state goes: variables of ``namespace`` by name, or, for objects the
    caller handed over (``save={"name": obj}``, ``namespace=None``), into those objects."""

    def __init__(self, objects: Mapping[str, Any], namespace: dict[str, Any] | None) -> None:
        self.names = list(objects)
        self.namespace = namespace
        self.objects = dict(objects)

    def current(self) -> dict[str, Any]:
        """Name -> the live object now."""
        if self.namespace is None:
            return dict(self.objects)
        return {name: self.namespace[name] for name in self.names}

    def put(self, entry: state.Entry, live: Any) -> Callable[[], None]:
        """Assign ``entry``; returns what undoes it (in-place restores are undone from the
        rollback copy instead, so theirs does nothing)."""
        if kinds.restore_in_place(entry, live):
            return lambda: None
        if self.namespace is not None:
            old = self.namespace.get(entry.name, _MISSING)
            self.namespace[entry.name] = entry.data
            return lambda: self._rebind(entry.name, old)
        if type(live) is type(entry.data) and isinstance(live, _REFILLABLE):
            old = copy.copy(live)
            _refill(live, entry.data)
            return lambda: _refill(live, old)
        raise DoesNotFit(
            f"{entry.name}: the saved {type(entry.data).__name__} cannot be put into the given "
            f"{type(live).__name__} in place"
        )

    def _rebind(self, name: str, old: Any) -> None:
        assert self.namespace is not None
        if old is _MISSING:
            self.namespace.pop(name, None)
        else:
            self.namespace[name] = old


def refillable(obj: Any) -> bool:
    """Whether a value restored by rebinding can instead be restored into ``obj`` in place."""
    return isinstance(obj, _REFILLABLE)


def _refill(target: Any, source: Any) -> None:
    if isinstance(target, (list, bytearray)):
        target[:] = source
    else:
        target.clear()
        target.update(source)


class RestorePlan:
    """What the live variables accept, and restoring one checkpoint into them.

    ``rollback`` holds the copy of in-place state taken before assigning; afterwards the
    persister can take :attr:`rollback` over as a buffer set, so restoring needs no memory
    beyond what snapshots use anyway.
    """

    def __init__(
        self, targets: Targets, kinds: Mapping[str, str], rollback: state.SnapshotBuffers
    ) -> None:
        self.targets = targets
        self.kinds = dict(kinds)
        self.rollback = rollback
        self.rng_state: dict[str, Any] = {}
        """The generator states (and loop position) of the checkpoint last restored."""
        live = targets.current()
        self.wanted = {
            name: (kind, blob_for(kind, live_state(kind, live[name])))
            for name, kind in self.kinds.items()
        }

    def restore(self, folder: str, expected_md5: Mapping[str, str]) -> list[str]:
        """Read the snapshot in local ``folder`` and assign all of it; returns the names
        unpickled. Raises :class:`IntegrityError` (:class:`DoesNotFit` for a failed assignment)
        with the live objects as they were."""
        entries, rng_state = read_snapshot(folder, expected_md5, self.wanted)
        live = self.targets.current()
        in_place = {e.name: live[e.name] for e in entries if kinds.fits_in_place(e, live[e.name])}
        saved = self.rollback.capture(
            in_place, kinds.by_name({name: self.kinds[name] for name in in_place})
        )
        saved_rng = rng.capture_rng()
        undo: list[Callable[[], None]] = []
        entry = None
        try:
            for entry in entries:
                undo.append(self.targets.put(entry, live[entry.name]))
            entry = None
            rng.restore_rng(rng_state)
        except Exception as exc:
            for step in reversed(undo):
                step()
            for old in saved:
                kinds.restore_in_place(old, live[old.name])
            rng.restore_rng(saved_rng)
            # What was put back may now share memory with the copy (an optimizer keeps the
            # tensors it is given): the next copy, and snapshots, go into other buffers.
            self.rollback = state.SnapshotBuffers()
            if isinstance(exc, IntegrityError):
                raise
            where = entry.name if entry is not None else "random generators"
            text = (str(exc).strip() or type(exc).__name__).splitlines()
            raise DoesNotFit(f"{where}: {' '.join(line.strip() for line in text)[:300]}") from None
        self.rng_state = rng_state
        return [e.name for e in entries if self.wanted[e.name][1] == OBJECTS]
