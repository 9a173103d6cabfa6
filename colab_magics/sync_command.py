"""``%drive_sync`` as plain Python: one push or pull, its options checked together first.

Drive paths go through ``colab_magics.sync``, a ``gs://`` side through ``colab_magics.gcs``.
Options that belong to one action (``--delete`` to push, ``--extract`` to pull) are refused
with the other, and Drive-only ones with a bucket, before anything is read or written.
"""

from __future__ import annotations

import dataclasses

from colab_magics import gcs, settings, sync
from colab_magics.drive import DriveClient
from colab_magics.progress import NO_SINK, Sink
from colab_magics.sync import SyncReport
from colab_magics.units import parse_size

PUSH_ONLY = ("delete", "watch", "shard", "dry_run")
"""Options that mean something only when pushing to Drive."""
PULL_ONLY = ("extract", "max_size")
"""Options that mean something only when pulling."""
ERRORS = (sync.SyncError, sync.SyncAborted, gcs.GcsError)
"""What a sync that was asked for properly may still fail with (beside DriveError)."""


@dataclasses.dataclass(frozen=True)
class SyncRequest:
    """One checked push or pull: ``source`` → ``dest`` with its options."""

    action: str
    source: str
    dest: str
    jobs: int
    delete: bool = False
    watch: bool = False
    shard: int | None = None
    dry_run: bool = False
    extract: bool = False
    max_size: int | None = None

    @property
    def bucket(self) -> bool:
        """Whether one side is a ``gs://`` path."""
        return gcs.is_gs(self.source) or gcs.is_gs(self.dest)

    @property
    def title(self) -> str:
        return f"drive_sync {self.action} {self.source} → {self.dest}"


def sync_request(
    action: str,
    paths: list[str],
    *,
    jobs: int | None = None,
    delete: bool = False,
    watch: bool = False,
    shard: int | None = None,
    dry_run: bool = False,
    extract: bool = False,
    max_size: str | int | None = None,
) -> SyncRequest:
    """The request ``%drive_sync ACTION PATHS --options`` makes; ``ValueError`` (one line,
    naming the options) for options that do not go together. ``jobs`` None: the setting."""
    given = {"delete": delete, "watch": watch, "shard": shard, "dry_run": dry_run,
             "extract": extract, "max_size": max_size}  # fmt: skip
    if action not in ("push", "pull"):
        raise ValueError(f"%drive_sync: the action is push or pull, not {action!r}")
    other = PULL_ONLY if action == "push" else PUSH_ONLY
    wrong = [_flag(o) for o in other if given[o]]
    if wrong:
        raise ValueError(f"{' '.join(wrong)} does not go with {action}")
    if len(paths) != 2:
        shape = "LOCAL DRIVE_PATH" if action == "push" else "DRIVE_PATH LOCAL"
        raise ValueError(f"%drive_sync {action} takes two paths: {shape}")
    jobs = settings.get("jobs") if jobs is None else jobs
    if jobs < 1 or (shard is not None and shard < 1):
        raise ValueError("--jobs and --shard need a number of at least 1")
    if isinstance(max_size, str):
        try:
            max_size = parse_size(max_size)
        except ValueError as exc:
            raise ValueError(f"--max-size: {exc}") from None
    request = SyncRequest(action, *paths, jobs=jobs, delete=delete, watch=watch, shard=shard,
                          dry_run=dry_run, extract=extract, max_size=max_size)  # fmt: skip
    drive_only = [_flag(o) for o in PUSH_ONLY if given[o]]
    if request.bucket and drive_only:
        raise ValueError(f"{' '.join(drive_only)} works with Drive paths only, not gs://")
    return request


def run_sync(
    request: SyncRequest, *, client: DriveClient | None = None, progress: Sink = NO_SINK
) -> SyncReport:
    """Do ``request`` (not a ``watch``: see ``colab_magics.background``); ``client`` is needed
    unless a side is a bucket."""
    r = request
    extra = {} if r.max_size is None else {"max_size": r.max_size}
    if r.bucket:
        if r.action == "push":
            return gcs.push(r.source, r.dest, jobs=r.jobs, progress=progress)
        return gcs.pull(r.source, r.dest, jobs=r.jobs, extract=r.extract, progress=progress,
                        **extra)  # fmt: skip
    if client is None:
        raise ValueError("a Drive sync needs a client")
    if r.action == "push":
        return sync.push(r.source, r.dest, client=client, delete=r.delete, jobs=r.jobs,
                         dry_run=r.dry_run, shard=r.shard, progress=progress)  # fmt: skip
    return sync.pull(r.source, r.dest, client=client, jobs=r.jobs, extract=r.extract,
                     progress=progress, **extra)  # fmt: skip


def _flag(option: str) -> str:
    return f"--{option.replace('_', '-')}"
