"""One runtime per run: a lease file in the store, renewed by a heartbeat, that fences a takeover.

Two notebooks (two Colab tabs) running the same ``%%checkpointed NAME`` would interleave their
checkpoints. Drive has no compare-and-swap, so each runtime that wants the run puts a file
``lease-<token>`` in the run's folder, and all of them follow the same rules:

- a lease whose heartbeat (its modification time) is more than the TTL old on the store's
  clock is stale: its runtime is gone or cut off, and anyone may delete it, which fences that
  runtime;
- the oldest live lease by (creation time, id) holds the run. A newer one waits while an older
  one could be a dead runtime's, and gives up (deleting its own file) as soon as that one's
  heartbeat moves: the other runtime is alive;
- the holder renews its file every TTL/6 and writes a manifest only while its last renewal was
  sent less than TTL/2 ago; a renewal answered 404 means it was taken over.

A taker waits until a full TTL has passed since the last heartbeat, and the holder stops at
TTL/2 after it, so the two never write checkpoints at the same time. The TTL is 30 s, or
``$COLAB_MAGICS_LEASE_SECONDS``; runtimes may differ in it, so each lease file carries its
holder's TTL (property ``ttl``) and others judge that lease by it, not by their own.

The rules need no compare-and-swap, so they hold on any store that can create, rewrite, list,
read and delete small files: :class:`LeaseFiles` is that interface, :class:`DriveLeaseFiles`
its Drive side (appProperties hold the properties) and ``colab_magics.gcs.lease`` a bucket's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import colab_magics.settings as settings
from colab_magics.drive import DriveClient, DriveError, DriveFile, DriveNotFound
from colab_magics.drive.paths import query_literal
from colab_magics.progress import Progress
from colab_magics.settings import LEASE_ENV  # noqa: F401 (importers name it from here)
from colab_magics.units import format_seconds

MAX_TTL = 86400.0
"""A lease claiming more than a day is judged as lasting a day."""
NAME = re.compile(r"^lease-[0-9a-f]{16}$")
"""A lease file's name in the run's folder."""


class LeaseRefused(Exception):
    """A live runtime holds the run: this one must not restore or train it."""


class LeaseLost(RuntimeError):
    """Another runtime took the run over: this one must write no more checkpoints."""


class LeaseUnconfirmed(RuntimeError):
    """The lease was not renewed recently enough to write safely; a later attempt may be."""


class LeaseGone(Exception):
    """A lease file was deleted or replaced since it was read (raised by :class:`LeaseFiles`)."""


@dataclasses.dataclass(frozen=True)
class LeaseFile:
    """One runtime's lease file, as the store shows it; times on the store's clock."""

    id: str
    created: float
    modified: float
    """The last heartbeat."""
    props: Mapping[str, str]
    """``colab_magics_lease`` (the run), ``host``, ``pid``, ``ttl``."""
    ref: Any = dataclasses.field(default=None, compare=False)
    """What the store's operations take (a ``DriveFile``, a ``GcsObject``)."""


class LeaseFiles(Protocol):
    """The lease files of one run's folder in one store."""

    store: str
    """How messages call the store ("Drive")."""
    errors: tuple[type[BaseException], ...]
    """The store's own failures (unreachable, refused)."""

    def create(self, name: str, props: dict[str, str]) -> LeaseFile:
        """A new empty file ``name`` with ``props``."""
        ...

    def renew(self, file: LeaseFile) -> LeaseFile:
        """Rewrite ``file`` so its modification time moves; :class:`LeaseGone` if it was
        deleted (or replaced) since."""
        ...

    def list(self) -> list[LeaseFile]:
        """Every file named like a lease (:data:`NAME`) in the folder, as listed now."""
        ...

    def get(self, file: LeaseFile) -> LeaseFile | None:
        """``file`` read again, None once it is gone."""
        ...

    def delete(self, file: LeaseFile) -> None:
        """Delete ``file``; :class:`LeaseGone` where the store can tell it changed since it
        was read (then it is left alone)."""
        ...


class DriveLeaseFiles:
    """:class:`LeaseFiles` in a Drive folder: empty files, properties as appProperties."""

    store = "Drive"
    errors: tuple[type[BaseException], ...] = (DriveError,)

    def __init__(self, client: DriveClient, folder: str) -> None:
        self.client = client
        self.folder = folder
        self._parent: str | None = None

    @staticmethod
    def _of(file: DriveFile) -> LeaseFile:
        created, modified = drive_time(file.created_time), drive_time(file.modified_time)
        return LeaseFile(file.id, created, modified, file.app_properties, file)

    def create(self, name: str, props: dict[str, str]) -> LeaseFile:
        made = self.client.upload(b"", f"{self.folder}/{name}", replace=False, app_properties=props)
        self._parent = made.file.parents[0]
        return self._of(made.file)

    def renew(self, file: LeaseFile) -> LeaseFile:
        try:
            return self._of(self.client.upload(b"", file_id=file.id).file)
        except DriveNotFound:
            raise LeaseGone(file.id) from None

    def list(self) -> list[LeaseFile]:
        if self._parent is None:
            raise RuntimeError("the lease file was never made")
        found = self.client.query(
            f"{query_literal(self._parent)} in parents and name contains 'lease-' "
            "and trashed = false"
        )
        return [self._of(f) for f in found if NAME.match(f.name) and not f.is_folder]

    def get(self, file: LeaseFile) -> LeaseFile | None:
        try:
            return self._of(self.client.file(file.id))
        except DriveNotFound:
            return None

    def delete(self, file: LeaseFile) -> None:
        self.client.delete_ids([file.id])


def lease_seconds() -> float:
    """The lease's TTL: the ``lease_seconds`` setting, ``$COLAB_MAGICS_LEASE_SECONDS`` or 30 s."""
    return settings.get("lease_seconds")


def drive_time(stamp: str) -> float:
    """Unix time of a Drive timestamp (``2026-11-23T21:37:46.123Z``)."""
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def describe_holder(file: LeaseFile) -> str:
    """``host pid 4242``: the runtime behind a lease file, for messages."""
    return f"{file.props.get('host', '?')} pid {file.props.get('pid', '?')}"


@dataclasses.dataclass(frozen=True)
class Waited:
    """How long taking the lease waited for the lease of a runtime that had stopped."""

    seconds: float
    holder: str

    def __str__(self) -> str:
        return f"{format_seconds(self.seconds)} for the lease of runtime {self.holder}"


class Lease:
    """This runtime's lease on one run's folder; made by :func:`hold` (or :func:`acquire`)."""

    def __init__(self, files: LeaseFiles, *, run: str, ttl: float) -> None:
        self.files = files
        self.run = run
        self.ttl = ttl
        self.interval = ttl / 6
        self.token = secrets.token_hex(8)
        self.host = socket.gethostname()[:60]
        self.holder = f"{self.host} pid {os.getpid()}"
        self.file: LeaseFile | None = None
        self.waited: Waited | None = None
        self.lost: str | None = None
        self._lock = threading.Lock()
        self._renewed_at = -math.inf  # monotonic time the last confirmed renewal was sent
        self._clock = (0.0, 0.0)  # (the store's time, our monotonic time) at the last answer
        self._listeners: list[Callable[[str], None]] = []
        self._released = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the holder's side -----------------------------------------------------------------
    def renew(self) -> bool:
        """One heartbeat: rewrite the (empty) lease file so the store moves its modified time."""
        sent = time.monotonic()
        try:
            file = self.files.renew(self._file())
        except LeaseGone:
            self._lose()
            return False
        except Exception:  # the store unreachable: the next beat tries again, check() tells the age
            return False
        self._renewed(sent, file)
        return True

    def check(self) -> None:
        """Raise unless this runtime may write a manifest now (see the module docstring)."""
        if self.lost:
            raise LeaseLost(self.lost)
        with self._lock:
            age = time.monotonic() - self._renewed_at
        if age > self.ttl / 2:
            raise LeaseUnconfirmed(
                f"the lease on run {self.run} was last renewed {format_seconds(age)} ago; "
                f"no checkpoint is written until {self.files.store} confirms it again"
            )

    def valid(self) -> bool:
        try:
            self.check()
        except (LeaseLost, LeaseUnconfirmed):
            return False
        return True

    def on_lost(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(message)`` once the lease is taken over (now, if it already was)."""
        with self._lock:
            if self.lost is None:
                self._listeners.append(listener)
                return
        listener(self.lost)

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(
            target=self._beat, name=f"colab_magics-lease-{self.run}", daemon=True
        )
        self._thread.start()

    def stop_heartbeat(self) -> None:
        """Stop renewing (the file stays: it lapses after the TTL, as after a SIGKILL)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.ttl)

    def release(self) -> None:
        """Stop renewing and delete the lease file, so the next runtime need not wait."""
        with self._lock:
            self._released = True
        self.stop_heartbeat()
        if self.lost is None and self.file is not None:
            try:
                self.files.delete(self.file)
            except (LeaseGone, *self.files.errors):
                pass  # it lapses after the TTL

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.renew() and self.lost:
                return

    def _lose(self) -> None:
        with self._lock:
            if self.lost is not None or self._released:
                return
            self.lost = (
                f"another runtime took over run {self.run}; this runtime no longer checkpoints"
            )
            listeners, self._listeners = self._listeners, []
        self._stop.set()
        for listener in listeners:
            listener(self.lost)

    def _renewed(self, sent: float, file: LeaseFile) -> None:
        with self._lock:
            self.file = file
            self._renewed_at = sent
            self._clock = (file.modified, time.monotonic())

    def _file(self) -> LeaseFile:
        if self.file is None:
            raise RuntimeError("the lease file was never made")
        return self.file

    # -- taking the lease ------------------------------------------------------------------
    def store_now(self) -> float:
        """The store's clock now, from the stamp on our last renewal (never ahead of it)."""
        with self._lock:
            stamp, at = self._clock
        return stamp + time.monotonic() - at

    def create(self) -> None:
        sent = time.monotonic()
        props = {
            "colab_magics_lease": self.run,
            "host": self.host,
            "pid": str(os.getpid()),
            "ttl": f"{self.ttl:g}",
        }
        self._renewed(sent, self.files.create(f"lease-{self.token}", props))

    def wait_turn(self, progress: Progress, sleep: Callable[[float], None] = time.sleep) -> None:
        """Return once this lease is the oldest live one; :class:`LeaseRefused` if a live
        runtime holds the run (its heartbeat moved while we watched)."""
        mine = self._file()
        poll = min(1.0, self.interval)
        started = time.monotonic()
        first_seen: dict[str, float] = {}
        waited_for = None
        while True:
            if self.lost:
                raise LeaseRefused(
                    f"run {self.run} was taken by another runtime while this one waited for "
                    "it: stop it there, or use another NAME here"
                )
            files = self.files.list()
            waited = time.monotonic() - started
            if mine.id not in {f.id for f in files} and waited < self.ttl:
                # The listing does not show our lease yet, so it may not show one made just
                # before it either: decide once it does.
                progress.update(
                    message=f"waiting up to {format_seconds(self.ttl - waited)} for "
                    f"{self.files.store} to list this runtime's lease"
                )
                sleep(poll)
                continue
            ahead = self._ahead(files, mine)
            if not ahead:
                break
            for file, age in ahead:
                if first_seen.setdefault(file.id, file.modified) != file.modified:
                    raise LeaseRefused(
                        f"run {self.run} is in use by another runtime ({describe_holder(file)}, "
                        f"last heartbeat {format_seconds(age)} ago): stop it there, or use "
                        "another NAME here"
                    )
            file, age = min(ahead, key=lambda pair: pair[1])
            waited_for = describe_holder(file)
            progress.update(
                message=f"waiting up to {format_seconds(self.ttl_of(file) - age)} for the lease of "
                f"runtime {waited_for} (last heartbeat {format_seconds(age)} ago)"
            )
            sleep(poll)
        if waited_for is not None:
            self.waited = Waited(time.monotonic() - started, waited_for)

    def _ahead(self, files: list[LeaseFile], mine: LeaseFile) -> list[tuple[LeaseFile, float]]:
        """Live leases older than ``mine``, with their heartbeat's age; stale ones are fenced."""
        rank = (mine.created, mine.id)
        ahead = []
        for file in files:
            if file.id == mine.id:
                continue
            age = self.store_now() - file.modified
            if age > self.ttl_of(file) and self._fence(file):
                continue
            if (file.created, file.id) < rank:
                ahead.append((file, age))
        return ahead

    def ttl_of(self, file: LeaseFile) -> float:
        """The TTL the lease in ``file`` was taken with (ours, for a lease that names none)."""
        try:
            ttl = float(file.props.get("ttl", ""))
        except ValueError:
            return self.ttl
        return min(ttl, MAX_TTL) if ttl > 0 and math.isfinite(ttl) else self.ttl

    def _fence(self, file: LeaseFile) -> bool:
        """Delete a lease that looks stale, after reading it again (listings may lag)."""
        fresh = self.files.get(file)
        if fresh is None:
            return True
        if self.store_now() - fresh.modified <= self.ttl_of(fresh):
            return False
        try:
            self.files.delete(fresh)
        except LeaseGone:
            return False  # renewed just now: judge it again on the next look
        return True


def hold(files: LeaseFiles, *, run: str, progress: Progress, ttl: float | None = None) -> Lease:
    """Take run ``run``'s lease among ``files``, waiting out a stopped runtime's lease.

    Raises :class:`LeaseRefused` when a live runtime holds it; the returned lease renews
    itself until :meth:`Lease.release`.
    """
    lease = Lease(files, run=run, ttl=lease_seconds() if ttl is None else ttl)
    lease.create()
    lease.start_heartbeat()
    try:
        lease.wait_turn(progress)
    except BaseException:
        lease.release()
        raise
    return lease


def acquire(
    client: DriveClient,
    folder: str,
    *,
    run: str,
    progress: Progress,
    ttl: float | None = None,
) -> Lease:
    """:func:`hold` for run ``run`` in Drive ``folder``."""
    return hold(DriveLeaseFiles(client, folder), run=run, progress=progress, ttl=ttl)
