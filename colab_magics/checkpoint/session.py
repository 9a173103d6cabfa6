"""The object a checkpointed cell sees as ``ckpt``: steps, cadence, snapshots, restore."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from colab_magics.checkpoint import kinds, rng, state
from colab_magics.checkpoint.batches import BatchLoop
from colab_magics.checkpoint.deadline import Deadline
from colab_magics.checkpoint.durations import Cadence
from colab_magics.checkpoint.formats import BlobInfo, write_snapshot
from colab_magics.checkpoint.lease import LeaseLost, Waited
from colab_magics.checkpoint.manifest import Manifest, describe_age
from colab_magics.checkpoint.persister import Persister, Snapshot
from colab_magics.checkpoint.restore import DoesNotFit, RestorePlan, Targets
from colab_magics.checkpoint.staging import clear_leftovers, naming_a_full_disk
from colab_magics.progress import DONE, FAILED, Progress
from colab_magics.trainers import TrainerHooks
from colab_magics.units import format_seconds

_TOLD_UNPICKLED: set[tuple[int, str]] = set()
"""(client, run location) pairs whose user was already told that a restore unpickled."""


class CheckpointUsageError(ValueError):
    """The cell uses ``ckpt`` in a way that cannot be checkpointed correctly."""


RestoreBlobs = Callable[[str, Manifest], Any]
"""``restore(local_folder, manifest)``: put a downloaded checkpoint into the live objects, or
raise ``IntegrityError`` (the store then tries the next-older one)."""


@dataclasses.dataclass(frozen=True)
class Restored:
    """The checkpoint a store restored: its manifest, where it is, what the callback returned,
    and the newer ones it skipped (each ``"name: why"``)."""

    manifest: Manifest
    location: str
    blobs_location: str
    result: Any
    skipped: list[str]


class CheckpointStore(Protocol):
    """Where checkpoints live: uploads, confirms, lists and deletes them."""

    location: str

    def commit(
        self, folder: str, blobs: list[BlobInfo], *, step: int, created: float, progress: Progress
    ) -> Manifest: ...

    def load_newest(self, staging: str, restore: RestoreBlobs) -> Restored | None: ...

    def skipped_without_restore(self) -> list[str]: ...

    def prune(self, keep: int) -> None: ...


@dataclasses.dataclass(frozen=True)
class RestoredFrom:
    """``ckpt.restored_from``: the confirmed checkpoint this run resumed from."""

    step: int
    created: float
    location: str

    def __str__(self) -> str:
        return f"step {self.step} ({describe_age(self.created)}) from {self.location}"


class Checkpoint(TrainerHooks):
    """Checkpointing of one run: see ``colab_magics.checkpointed`` for the user's view."""

    def __init__(
        self,
        run: str,
        objects: dict[str, Any],
        *,
        namespace: dict[str, Any],
        store: CheckpointStore,
        cadence: Cadence,
        keep: int,
        deadline: Deadline,
        staging: str,
        progress: Progress,
        fresh: bool = False,
        in_namespace: bool = True,
        clock=time.monotonic,
    ) -> None:
        """``objects``: name -> live object; with ``in_namespace`` each is the variable of that
        name in ``namespace`` (read again at every snapshot, rebound on restore), otherwise the
        objects themselves are captured and restored in place."""
        self.run = run
        self.namespace = namespace
        self._targets = Targets(objects, namespace if in_namespace else None)
        self.store = store
        self.cadence = cadence
        self.keep = keep
        self.deadline = deadline
        self.staging = staging
        self.progress = progress
        self._clock = clock
        self._kinds = {name: kinds.classify(name, obj) for name, obj in objects.items()}
        self._capturing = kinds.by_name(self._kinds)
        self.step = 0
        self.restored_from: RestoredFrom | None = None
        self.waited_for_lease: Waited | None = None
        """Set when taking the run's lease waited for a runtime that had stopped."""
        self.stopped_for_deadline = False
        self._fenced: str | None = None
        self._start_note: str | None = None
        self._range_started = False
        self._loop: BatchLoop | None = None
        self._resume_loop: dict[str, Any] | None = None
        self._in_range = False
        self._mid_step = False
        self._save_requested = False
        self._interrupted: str | None = None
        self._last_snapshot_step: int | None = None
        self._mark = (0, clock())
        self._started = clock()
        self._steps_this_run = 0
        clear_leftovers(staging)
        rollback = self._restore() if not fresh else state.SnapshotBuffers()
        self._persister: Persister[tuple, Manifest] = Persister(
            self._stage, self._upload, on_error=self._failed, buffers=rollback
        )
        # Allocate the snapshot buffers (pinned, for CUDA) before the loop, not in its first stall.
        self._persister.warm(lambda buffers: buffers.capture(self._objects(), self._capturing))
        self.progress.update(step=self.step, run=run, cadence=cadence.describe())

    # -- what the cell calls -------------------------------------------------------------
    def range(self, stop: int) -> Iterator[int]:
        """Step numbers from the resume point up to ``stop``; a finished iteration is a step."""
        self._claim_loop("range")
        self.progress.update(total=stop)
        yield from self._steps(iter(range(self.step, stop)))

    def batches(self, loader: Any, epochs: int = 1) -> Iterator[tuple[int, Any]]:
        """``(epoch, batch)`` for ``epochs`` passes over ``loader`` (a ``DataLoader`` or any
        re-iterable of batches); a batch is a step, :attr:`epoch_done` marks an epoch's last.

        Each epoch's order comes from the run's seed and the epoch number; a resume in the
        middle of an epoch skips the batches already done without loading them and goes on
        with the order, and the random generators, an unbroken run would have had.
        """
        self._claim_loop("batches")
        try:
            loop = BatchLoop(
                loader,
                epochs,
                step=self.step,
                resume=self._resume_loop,
                say=lambda message: self.progress.update(message=message),
            )
        except ValueError as exc:
            raise CheckpointUsageError(str(exc)) from None
        self._resume_loop, self._loop = None, loop
        total = loop.total_steps()
        if total is not None:
            self.progress.update(total=total)
        yield from self._steps(iter(loop), after=loop.finish_batch)

    @property
    def epoch_done(self) -> bool:
        """True on the last batch of an epoch of :meth:`batches` (for ``sched.step()``)."""
        return self._loop is not None and self._loop.epoch_done

    def _claim_loop(self, kind: str) -> None:
        if self._range_started:
            raise CheckpointUsageError(
                f"ckpt.{kind}() is this cell's second checkpointed loop: use one ckpt.range() "
                "or ckpt.batches() loop per checkpointed cell (for epochs: "
                "for epoch, batch in ckpt.batches(loader, epochs=E):)"
            )
        self._range_started = True

    def _steps(
        self, items: Iterator[Any], after: Callable[[], None] | None = None
    ) -> Iterator[Any]:
        """Yield ``items``, one step each: counted, checkpointed on the cadence, interruptible
        at the boundary. ``after`` runs as a step ends, before its checkpoint is taken."""
        self._mark = (self.step, self._clock())
        self._in_range = True
        try:
            with _DeferredSignals(self):
                for item in items:
                    self._mid_step = True
                    yield item
                    self._mid_step = False
                    if after is not None:
                        after()
                    self.step += 1
                    self._steps_this_run += 1
                    self._after_step()
                    if self.stopped_for_deadline:
                        return
        finally:
            self._in_range = False
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def save(self) -> None:
        """Checkpoint now; inside ``ckpt.range``/``ckpt.batches`` at the end of the current step."""
        if self._in_range:
            self._save_requested = True
        else:
            self._snapshot()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every snapshot taken is confirmed on Drive (or failed)."""
        return self._persister.wait(timeout)

    # -- internals ---------------------------------------------------------------------------
    def _objects(self) -> dict[str, Any]:
        return self._targets.current()

    def _after_step(self) -> None:
        steps_since, since = self.step - self._mark[0], self._clock() - self._mark[1]
        elapsed = self._clock() - self._started
        self.progress.update(
            step=self.step,
            steps_per_second=self._steps_this_run / elapsed if elapsed > 0 else None,
        )
        if self._interrupted:
            reason = self._interrupted
            self._snapshot()
            # Still marked interrupted while saving: another interrupt gives up the save.
            self._finish_persisting(f"{reason}: saving step {self.step} before stopping")
            self._interrupted = None
            saved = "not checkpointed: " + self._fenced if self._fenced else "checkpoint saved"
            raise KeyboardInterrupt(f"{reason} at step {self.step}; {saved}")
        if self._save_requested or self.cadence.due(steps_since=steps_since, seconds_since=since):
            self._save_requested = False
            self._snapshot()
        persist_seconds = self._persister.last_seconds or 0.0
        if self.deadline.near(persist_seconds):
            self._snapshot()
            self._finish_persisting("the runtime is near its end")
            self.stopped_for_deadline = True
            left = format_seconds(self.deadline.seconds_left())
            self.progress.update(
                message=f"Stopped at step {self.step}: about {left} of runtime left. "
                "Re-run this cell in a fresh runtime to continue from here."
            )

    def lost_lease(self, message: str) -> None:
        """Another runtime took the run over: train on, but checkpoint no more."""
        self._fenced = message
        self.progress.update(error=message)

    def _snapshot(self) -> None:
        """Copy state now (the only stall training feels) and queue it for persisting."""
        if self._fenced:
            return
        if self._last_snapshot_step == self.step and not self._persister.last_error:
            return
        objects = self._objects()

        def fill(buffers: state.SnapshotBuffers):
            entries, generators = buffers.capture(objects, self._capturing), rng.capture_rng()
            if self._loop is not None:
                generators["batches"] = self._loop.state()
            return entries, generators

        self._persister.take(fill, step=self.step)
        self._last_snapshot_step = self.step
        self._mark = (self.step, self._clock())

    def _stage(self, snapshot: Snapshot) -> tuple[str, list[BlobInfo], int, float]:
        folder = os.path.join(self.staging, f"step-{snapshot.step}")
        shutil.rmtree(folder, ignore_errors=True)
        try:
            with naming_a_full_disk(self.staging):
                blobs = write_snapshot(snapshot.entries, snapshot.rng, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # a failed snapshot leaves nothing behind
            raise
        return folder, blobs, snapshot.step, snapshot.created

    def _upload(self, staged: tuple[str, list[BlobInfo], int, float]) -> Manifest:
        folder, blobs, step, created = staged
        try:
            manifest = self.store.commit(
                folder, blobs, step=step, created=created, progress=self.progress
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self._confirmed(manifest)  # shown now; pruning old checkpoints can take a while
        self.store.prune(self.keep)
        return manifest

    def _confirmed(self, manifest: Manifest) -> None:
        fields = {"confirmed_step": manifest.step, "confirmed_time": manifest.created}
        if self._start_note is not None and self.progress.get("message") == self._start_note:
            fields["message"] = None  # the confirmed step now says where a rerun would resume
        self.progress.update(**fields, error=self._fenced)

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, LeaseLost):
            self.lost_lease(str(exc))
        elif not self._fenced:  # a commit that was under way when the run was taken over
            self.progress.update(error=f"checkpoint failed, will retry at the next one: {exc}")

    def _finish_persisting(self, why: str) -> None:
        self.progress.update(message=f"{why}; waiting for Drive to confirm")
        self._persister.wait()

    def _restore(self) -> state.SnapshotBuffers:
        """Restore the newest checkpoint that fits; returns the buffers its rollback copy
        used, for snapshots to reuse."""
        plan = RestorePlan(self._targets, self._kinds, state.SnapshotBuffers())
        misfits: list[str] = []

        def restore(folder: str, manifest: Manifest) -> list[str]:
            try:
                return plan.restore(folder, manifest.expected_md5())
            except DoesNotFit as exc:
                misfits.append(str(exc))
                raise

        restored = self.store.load_newest(os.path.join(self.staging, "restore"), restore)
        if restored is None:
            skipped = self.store.skipped_without_restore()
            if misfits:
                # The checkpoints may be sound and the live objects changed (another model
                # size): starting over would soon prune them, so stop before the first step.
                raise CheckpointUsageError(
                    f"no checkpoint of run {self.run} fits the live objects "
                    f"({'; '.join(skipped)}): fix them, or use --fresh to start over"
                )
            note = f" (skipped: {'; '.join(skipped)})" if skipped else ""
            self._say_at_start(f"No confirmed checkpoint: starting at step 0{note}", skipped)
            return plan.rollback
        self.step = restored.manifest.step
        self._resume_loop = plan.rng_state.get("batches")
        self._last_snapshot_step = self.step
        self.restored_from = RestoredFrom(
            restored.manifest.step, restored.manifest.created, restored.location
        )
        notes = [f"skipped {'; '.join(restored.skipped)}"] if restored.skipped else []
        told = (id(getattr(self.store, "client", self.store)), self.store.location)
        if restored.result and told not in _TOLD_UNPICKLED:
            _TOLD_UNPICKLED.add(told)
            notes.append(f"unpickled {', '.join(restored.result)} from {restored.blobs_location}")
        self.progress.update(
            confirmed_step=restored.manifest.step, confirmed_time=restored.manifest.created
        )
        message = "; ".join([f"Resumed from {self.restored_from}", *notes])
        self._say_at_start(message, notes)
        return plan.rollback

    def _say_at_start(self, message: str, skipped: list[str]) -> None:
        """Where the run starts from; shown until a new checkpoint is confirmed, unless it
        names checkpoints that were skipped (those stay in view)."""
        self._start_note = None if skipped else message
        self.progress.update(message=message)

    def finish(self, exc: BaseException | None) -> None:
        """End of the cell: a final checkpoint (when the state is at a step boundary), then wait."""
        # An exception during a step may have left it half applied: then only what was
        # already snapshotted (at a boundary) is persisted. Elsewhere the state is whole.
        at_boundary = exc is None or not self._mid_step
        if at_boundary and self._last_snapshot_step != self.step:
            self._snapshot()
        try:
            self._persister.close()
        except KeyboardInterrupt:  # the save given up: say so, never leave it looking done
            self._not_saved()
            raise
        error = self._persister.last_error
        confirmed = self.progress.get("confirmed_step")
        if self._fenced:
            self.progress.update(state=FAILED, error=self._fenced)
        elif isinstance(exc, KeyboardInterrupt) and confirmed != self.step:
            self._not_saved()
        elif error is not None:
            self.progress.update(
                state=FAILED,
                error=f"the last checkpoint failed ({error}); the newest confirmed one is "
                + (f"step {confirmed}" if confirmed is not None else "none"),
            )
        else:
            self.progress.update(state=DONE)

    def _not_saved(self) -> None:
        confirmed = self.progress.get("confirmed_step")
        newest = f"step {confirmed}" if confirmed is not None else "none"
        why = f" ({self._persister.last_error})" if self._persister.last_error else ""
        self.progress.update(
            state=FAILED,
            error=f"interrupted at step {self.step}: not saved{why}; the newest confirmed "
            f"checkpoint is {newest}",
        )


class _DeferredSignals:
    """During the loop, Ctrl-C (SIGINT) and SIGTERM end it at the next step boundary, saved.

    A second signal before that boundary acts at once, as usual.
    """

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _DeferredSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.checkpoint._interrupted:
            raise KeyboardInterrupt
        self.checkpoint._interrupted = signal.Signals(signum).name
        self.checkpoint.progress.update(
            message="Interrupted: saving at the end of this step (interrupt again to stop now)"
        )

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
