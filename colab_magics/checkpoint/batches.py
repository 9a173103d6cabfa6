"""``ckpt.batches(loader, epochs=N)``: epochs of batches that resume mid-epoch, exactly.

The position saved with every checkpoint is the epoch, the batches done in it, the run's seed,
and what the epoch's start drew from: every global generator's state just before the epoch's
``iter(loader)`` and the states of the loader's own generators. ``iter(loader)`` runs with the
global generators put back afterwards, so what it draws never shifts the stream Dropout draws
from. A resume in the middle of an epoch puts the epoch's starting states back for the one
``iter()`` that rebuilds it (so the workers' base seed and the order are the ones the epoch
had) and drops the batches already done at the index level. A loader that saves its own
position (``state_dict()``) is restored from it instead.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from typing import Any

from colab_magics.checkpoint import loaders, rng

_END = object()


class BatchLoop:
    """The epochs and batches of one ``ckpt.batches`` loop, and its position."""

    def __init__(
        self,
        loader: Any,
        epochs: int,
        *,
        step: int,
        resume: dict[str, Any] | None,
        say: Callable[[str], None] = lambda message: None,
    ) -> None:
        """``say(message)`` tells the user something they should know (shown on the panel)."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a whole number of at least 1, not {epochs!r}")
        if not callable(getattr(loader, "__iter__", None)):
            raise ValueError(f"ckpt.batches() takes a DataLoader, not a {type(loader).__name__}")
        if isinstance(loader, Iterator):
            raise ValueError(
                "ckpt.batches() needs something it can iterate again each epoch (a DataLoader, "
                "a list of batches), not an iterator"
            )
        self.loader = loader
        self.say = say
        self.epochs = epochs
        self.length = _length(loader)
        self.stateful = loaders.is_stateful(loader)
        self.epoch_done = False
        self.fetched_to_skip = 0
        """Batches loaded only to be skipped (a loader without indices to skip by)."""
        resume = resume or {}
        self.seed = resume.get("seed", _run_seed())
        self.epoch, self.offset = resume.get("epoch", 0), resume.get("offset", 0)
        if not resume and step and self.length:
            # A checkpoint without a loop position (taken by ckpt.range): steps were batches.
            self.epoch, self.offset = divmod(step, self.length)
        self._epoch_rng: dict[str, Any] | None = resume.get("epoch_rng")
        self._generator_states: list[str] | None = resume.get("generators")
        self._loader_state = resume.get("loader")
        self._iterator: Iterator[Any] | None = None
        self._peeked: Any = _END
        self._shuffle = loaders.owned_shuffle(loader)

    def total_steps(self) -> int | None:
        return None if self.length is None else self.epochs * self.length

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        torch = sys.modules.get("torch")
        if self._shuffle is not None:
            self._shuffle.generator = torch.Generator()
        try:
            while self.epoch < self.epochs:
                if self._iterator is None:
                    self._iterator = self._open_epoch()
                batch = self._next()
                if batch is _END:
                    self._end_epoch()
                    continue
                if self.length is not None:
                    self.epoch_done = self.offset + 1 >= self.length
                else:
                    self._peeked = self._next()
                    self.epoch_done = self._peeked is _END
                yield self.epoch, batch
        finally:
            if self._shuffle is not None:
                self._shuffle.generator = None
            self._iterator = None

    def finish_batch(self) -> None:
        """A batch was trained on: count it; after an epoch's last one, the epoch is over
        (before the checkpoint at this boundary is taken, so it says "next epoch, batch 0")."""
        self.offset += 1
        if self.epoch_done:
            if self.length is not None and self._iterator is not None:
                next(self._iterator, None)  # lets the loader see its end (and save it)
            self._end_epoch()

    def state(self) -> dict[str, Any]:
        """The position, as JSON values, for the checkpoint at this step boundary."""
        loader_state = None
        if self.stateful:
            with rng.untouched():
                loader_state = loaders.encode_state(self.loader.state_dict())
        return {
            "epoch": self.epoch,
            "offset": self.offset,
            "seed": self.seed,
            "epoch_rng": self._epoch_rng,
            "generators": self._generator_states,
            "loader": loader_state,
        }

    # -- internals ---------------------------------------------------------------------------
    def _next(self) -> Any:
        if self._peeked is not _END:
            batch, self._peeked = self._peeked, _END
            return batch
        assert self._iterator is not None
        return next(self._iterator, _END)

    def _end_epoch(self) -> None:
        self.epoch += 1
        self.offset = 0
        self.epoch_done = False
        self._iterator = None
        self._peeked = _END
        self._epoch_rng = self._generator_states = None

    def _open_epoch(self) -> Iterator[Any]:
        # What iter() draws from the global generators (the workers' base seed) is put back,
        # here and on resume alike: whether a loader draws at an epoch's start (persistent
        # workers draw once per process) never moves the stream Dropout draws from.
        with rng.untouched():
            if self.stateful:
                return self._open_stateful()
            set_epoch = getattr(getattr(self.loader, "sampler", None), "set_epoch", None)
            if callable(set_epoch):
                set_epoch(self.epoch)  # DistributedSampler and alike: their own order per epoch
            if self._shuffle is not None:
                self._shuffle.generator.manual_seed(loaders.epoch_seed(self.seed, self.epoch))
            ours = getattr(self._shuffle, "generator", None)
            generators = loaders.user_generators(self.loader, skip=ours)
            if self.offset and self._epoch_rng is not None:
                rng.restore_rng(self._epoch_rng)
                if self._generator_states is not None:
                    loaders.set_generator_states(generators, self._generator_states)
            else:
                self._epoch_rng = rng.capture_rng()
                self._generator_states = loaders.generator_states(generators)
            return self._iter_skipping(self.offset)

    def _iter_skipping(self, count: int) -> Iterator[Any]:
        if loaders.is_index_loader(self.loader):
            return loaders.iter_skipping(self.loader, count)
        iterator = iter(self.loader)
        for _ in itertools.islice(iterator, count):
            self.fetched_to_skip += 1
        if self.fetched_to_skip:
            self.say(
                f"resumed by loading and dropping {self.fetched_to_skip} batches: "
                "this loader has no indices to skip by"
            )
        return iterator

    def _open_stateful(self) -> Iterator[Any]:
        if self._loader_state is not None:
            saved, self._loader_state = loaders.decode_state(self._loader_state), None
            self.loader.load_state_dict(saved)
            # torchdata's StatefulDataLoader rebuilds the saved iterator here.
            self.loader.state_dict()
        return iter(self.loader)


def _length(loader: Any) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


def _run_seed() -> int:
    """A run's seed when it starts: torch's initial seed (``torch.manual_seed(0)`` makes it 0),
    so an unbroken run and a resumed one of the same notebook shuffle alike."""
    torch = sys.modules.get("torch")
    return int(torch.initial_seed()) if torch is not None else 0


def check_state(state: Any) -> None:
    """Raise ``ValueError`` unless ``state`` is a loop position :class:`BatchLoop` can resume."""
    if not isinstance(state, dict):
        raise ValueError("the loop position is not a table")
    for key in ("epoch", "offset", "seed"):
        value = state.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"the loop position's {key} is not a whole number")
    if state.get("epoch_rng") is not None:
        rng.check_rng(state["epoch_rng"])
    generators = state.get("generators")
    if generators is not None:
        if not isinstance(generators, list):
            raise ValueError("the loop's generator states are not a list")
        for text in generators:
            rng.check_torch_state(text)
    if state.get("loader") is not None:
        loaders.decode_state(state["loader"])
