"""``colab_magics.checkpointed``: the public function behind ``%%checkpointed``."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from colab_magics.checkpoint.deadline import runtime_deadline
from colab_magics.checkpoint.durations import parse_cadence
from colab_magics.checkpoint.kinds import classify
from colab_magics.checkpoint.lease import Lease, LeaseRefused, acquire, lease_seconds
from colab_magics.checkpoint.restore import refillable
from colab_magics.checkpoint.session import Checkpoint, CheckpointStore, CheckpointUsageError
from colab_magics.checkpoint.staging import StagingRefused, staging_folder
from colab_magics.checkpoint.state import PICKLE, VALUE, CaptureError
from colab_magics.drive.paths import parse_path
from colab_magics.progress import FAILED, Progress

if TYPE_CHECKING:
    from colab_magics.checkpoint.folder import FolderSync

DEFAULT_FOLDER = "colab_magics/checkpoints"
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def run_folder(name: str, to: str | None) -> str:
    """The Drive folder of run ``name``: ``--to`` or ``colab_magics/checkpoints/NAME``."""
    return to.rstrip("/") if to else f"{DEFAULT_FOLDER}/{name}"


def resolve_objects(
    save: Sequence[str] | Mapping[str, Any], namespace: Mapping[str, Any]
) -> dict[str, Any]:
    """Name -> live object for ``save``; every failure is one CheckpointUsageError line."""
    if isinstance(save, Mapping):
        objects = dict(save)
    else:
        missing = [name for name in save if name not in namespace]
        if missing:
            raise CheckpointUsageError(
                f"--save names {', '.join(repr(m) for m in missing)}, which "
                f"{'is' if len(missing) == 1 else 'are'} not defined: define "
                f"{'it' if len(missing) == 1 else 'them'} in an earlier cell"
            )
        objects = {name: namespace[name] for name in save}
    for name, obj in objects.items():
        if not name.isidentifier():
            raise CheckpointUsageError(f"--save: {name!r} is not a variable name")
        try:
            kind = classify(name, obj)
        except CaptureError as exc:
            raise CheckpointUsageError(str(exc)) from None
        if isinstance(save, Mapping) and kind in (VALUE, PICKLE) and not refillable(obj):
            # Without a variable to rebind, a value is restored into the object itself.
            raise CheckpointUsageError(
                f"save={{{name!r}: ...}}: a {type(obj).__name__} cannot be restored in place; "
                f"pass the name of its variable instead (save=[{name!r}])"
            )
    return objects


def parse_names(text: str) -> list[str]:
    """``"model,opt, sched"`` -> ``["model", "opt", "sched"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


def validate_run_name(name: str) -> str:
    if not _RUN_NAME.match(name):
        raise CheckpointUsageError(
            f"{name!r} is not a run name: use letters, digits, '.', '_' or '-' (at most 100)"
        )
    return name


def validate_folder(to: str) -> str:
    """``--to``: a Drive folder below My Drive (not My Drive itself, nothing above it)."""
    try:
        parts = parse_path(to)
    except ValueError as exc:
        raise CheckpointUsageError(f"--to: {exc}") from None
    if not parts:
        raise CheckpointUsageError(f"--to {to!r} is My Drive itself: name a folder for the run")
    return to


def default_staging(name: str) -> str:
    """Local scratch for snapshots of run ``name`` (a runtime's local disk; lost with it)."""
    try:
        return staging_folder(name)
    except StagingRefused as exc:
        raise CheckpointUsageError(str(exc)) from None


def hold_run(store: CheckpointStore, name: str, progress: Progress, ttl: float) -> Lease | None:
    """This runtime's lease on run ``name`` (None for a store not on Drive); a live runtime
    holding it is a one-line CheckpointUsageError, before anything is restored."""
    from colab_magics.checkpoint.drive_store import DriveCheckpointStore
    from colab_magics.gcs.store import GcsCheckpointStore

    try:
        if isinstance(store, DriveCheckpointStore):
            lease = acquire(store.client, store.folder, run=name, progress=progress, ttl=ttl)
        elif isinstance(store, GcsCheckpointStore):
            from colab_magics.gcs.lease import acquire as acquire_in_bucket

            lease = acquire_in_bucket(
                store.client, store.bucket, store.prefix, run=name, progress=progress, ttl=ttl
            )
        else:
            return None
    except LeaseRefused as exc:
        progress.update(state=FAILED, message=str(exc))
        raise CheckpointUsageError(str(exc)) from None
    store.lease = lease
    return lease


def _folder_sync(
    directory: str, name: str, to: str | None, store: CheckpointStore, progress: Progress, keep: int
) -> FolderSync:
    from colab_magics.checkpoint.folder import FolderSync
    from colab_magics.connection import current_client

    client = getattr(store, "client", None) or current_client()
    remote = f"{run_folder(name, to)}/dir"
    return FolderSync(
        directory, remote, client=client, progress=progress, run=name,
        staging=default_staging(name), keep=keep,
    )  # fmt: skip


@contextlib.contextmanager
def checkpointed(
    name: str,
    *,
    save: Sequence[str] | Mapping[str, Any] = (),
    namespace: dict[str, Any] | None = None,
    every: str = "10m",
    keep: int = 3,
    to: str | None = None,
    lifetime: str | None = None,
    margin: str | None = None,
    fresh: bool = False,
    directory: str | None = None,
    store: CheckpointStore | None = None,
    progress: Progress | None = None,
) -> Iterator[Checkpoint]:
    """Run a block of training that resumes from the newest confirmed checkpoint on Drive.

    ``save`` names variables of ``namespace`` (the caller's globals by default) or maps names to
    objects. The block gets a :class:`Checkpoint`; loop with ``for epoch, batch in
    ckpt.batches(loader, epochs=n)`` or ``for step in ckpt.range(n)``.
    On leaving the block a final checkpoint is taken and confirmed; on an exception the queued
    one is confirmed and the exception propagates. ``directory`` (``--dir``) is a local folder
    a trainer writes its own checkpoints into: restored before the block, pushed while it
    runs, confirmed at the end. One runtime at a time holds a run (a lease on Drive): another
    one running it is refused, and one that stopped is waited out (``lease.py``).
    """
    if namespace is None:
        namespace = sys._getframe(2).f_globals
    validate_run_name(name)
    in_bucket = to is not None and to.startswith("gs://")
    if to is not None and not in_bucket:
        validate_folder(to)
    if in_bucket and directory is not None:
        raise CheckpointUsageError("--dir works with Drive only: leave out --to gs://...")
    try:
        cadence = parse_cadence(str(every))
        deadline = runtime_deadline(lifetime, margin)
        ttl = lease_seconds()
    except ValueError as exc:
        raise CheckpointUsageError(str(exc)) from None
    if keep < 1:
        raise CheckpointUsageError("--keep must be at least 1: the newest checkpoint is kept")
    if not save and directory is None:
        raise CheckpointUsageError(
            "nothing to checkpoint: name variables with --save, or a folder with --dir"
        )
    objects = resolve_objects(save, namespace)
    if store is None and in_bucket:
        from colab_magics.gcs import GcsClient, GcsError
        from colab_magics.gcs.store import GcsCheckpointStore

        try:
            store = GcsCheckpointStore(GcsClient(), to, run=name)
        except (GcsError, ValueError) as exc:
            raise CheckpointUsageError(f"--to: {exc}") from None
    if store is None:
        from colab_magics.checkpoint.drive_store import DriveCheckpointStore

        store = DriveCheckpointStore.for_current_client(run_folder(name, to), run=name)
    progress = progress or Progress(f"checkpointed {name}")
    lease = hold_run(store, name, progress, ttl)
    try:
        folder_sync = None
        if directory is not None:
            folder_sync = _folder_sync(directory, name, to, store, progress, keep)
            folder_sync.set_lease(lease)
            folder_sync.restore(fresh=fresh)
        checkpoint = Checkpoint(
            name,
            objects,
            namespace=namespace,
            store=store,
            cadence=cadence,
            keep=keep,
            deadline=deadline,
            staging=default_staging(name),
            # With --dir alone the trainer's own checkpoints are the run's progress: the
            # empty snapshot's "step 0" would only hide them.
            progress=progress if objects else Progress(progress.title),
            fresh=fresh,
            in_namespace=not isinstance(save, Mapping),
        )
        checkpoint.folder = folder_sync
        if lease is not None:
            checkpoint.waited_for_lease = lease.waited
            lease.on_lost(checkpoint.lost_lease)
            if folder_sync is not None:
                lease.on_lost(lambda message: folder_sync.stop_pushing())
                lease.on_lost(lambda message: progress.update(error=message))
        if folder_sync is not None:
            folder_sync.start()
        error: BaseException | None = None
        try:
            yield checkpoint
        except BaseException as exc:
            error = exc
            raise
        finally:
            folder_confirmed = folder_sync.finish() if folder_sync is not None else True
            checkpoint.finish(error)
            if not objects:
                progress.update(state=checkpoint.progress.state)
            if not folder_confirmed or isinstance(error, Exception):
                progress.update(state=FAILED)  # the cell raised: not a finished run
    finally:
        if lease is not None:
            lease.release()
