"""One runtime per run in a bucket: a lease object swapped with ``ifGenerationMatch``.

The Drive lease (``colab_magics.checkpoint.lease``) needs a file per runtime and an ordering
rule, because Drive has no compare-and-swap. GCS has one: a write that names the generation
it expects fails (412) if anyone wrote in between. So a run has a single object
``PREFIX/lease.json``:

- taking it: create it with ``ifGenerationMatch=0``; or, when it exists, watch its
  generation: one that moves means a live runtime (refused); one that stays unchanged for the
  TTL (or was written more than twice the TTL ago) is stale, and is replaced with
  ``ifGenerationMatch=<that generation>`` — of several takers exactly one wins;
- holding it: rewrite it every TTL/6 with ``ifGenerationMatch=<our generation>``; a 412 or 404
  means another runtime took it, and this one stops checkpointing at once;
- a manifest is written only while the last confirmed renewal was sent less than TTL/2 ago,
  as on Drive, so a taker (who waits a full TTL) and the old holder never write together.

The lease has the Drive lease's surface (``check``, ``valid``, ``token``, ``waited``,
``on_lost``, ``release``), so the checkpoint engine treats both alike.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from colab_magics.checkpoint.lease import (
    LeaseLost,
    LeaseRefused,
    LeaseUnconfirmed,
    Waited,
    lease_seconds,
)
from colab_magics.gcs.client import GcsClient, GcsObject
from colab_magics.gcs.download import read_bytes
from colab_magics.gcs.errors import GcsError, GcsNotFound, GcsPreconditionFailed
from colab_magics.gcs.push import upload_bytes
from colab_magics.progress import Progress
from colab_magics.units import format_seconds

LEASE_NAME = "lease.json"


class GcsLease:
    """This runtime's lease on one run's prefix; made by :func:`acquire`."""

    def __init__(self, client: GcsClient, bucket: str, name: str, *, run: str, ttl: float):
        self.client = client
        self.bucket = bucket
        self.name = name
        self.run = run
        self.ttl = ttl
        self.interval = ttl / 6
        self.token = secrets.token_hex(8)
        self.holder = f"{socket.gethostname()[:60]} pid {os.getpid()}"
        self.waited: Waited | None = None
        self.lost: str | None = None
        self.generation: int | None = None
        self._lock = threading.Lock()
        self._renewed_at = -math.inf
        self._listeners: list[Callable[[str], None]] = []
        self._released = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- writing the lease object ------------------------------------------------------------
    def _write(self, if_generation_match: int) -> bool:
        """Write our lease over generation ``if_generation_match`` (0: none); False on 412."""
        data = json.dumps({"run": self.run, "token": self.token, "holder": self.holder}).encode()
        sent = time.monotonic()
        try:
            obj = upload_bytes(
                self.client,
                data,
                self.bucket,
                self.name,
                hashlib.md5(data).hexdigest(),
                if_generation_match=if_generation_match,
                content_type="application/json",
            )
        except GcsPreconditionFailed:
            return False
        with self._lock:
            self.generation = obj.generation
            self._renewed_at = sent
        return True

    # -- the holder's side -------------------------------------------------------------------
    def renew(self) -> bool:
        """One heartbeat; a lease someone else replaced or deleted is lost."""
        try:
            if self._write(self.generation or 0):
                return True
        except GcsNotFound:
            pass
        except GcsError:  # unreachable: the next beat tries again; check() tells the age
            return False
        self._lose()
        return False

    def check(self) -> None:
        """Raise unless this runtime may write a manifest now."""
        if self.lost:
            raise LeaseLost(self.lost)
        with self._lock:
            age = time.monotonic() - self._renewed_at
        if age > self.ttl / 2:
            raise LeaseUnconfirmed(
                f"the lease on run {self.run} was last renewed {format_seconds(age)} ago; "
                "no checkpoint is written until GCS confirms it again"
            )

    def valid(self) -> bool:
        try:
            self.check()
        except (LeaseLost, LeaseUnconfirmed):
            return False
        return True

    def on_lost(self, listener: Callable[[str], None]) -> None:
        with self._lock:
            if self.lost is None:
                self._listeners.append(listener)
                return
        listener(self.lost)

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(
            target=self._beat, name=f"colab_magics-gcs-lease-{self.run}", daemon=True
        )
        self._thread.start()

    def stop_heartbeat(self) -> None:
        """Stop renewing (the object stays: it goes stale after the TTL, as after a kill)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.ttl)

    def release(self) -> None:
        """Stop renewing and delete our generation of the lease, so no one need wait."""
        with self._lock:
            self._released = True
        self.stop_heartbeat()
        if self.lost is None and self.generation is not None:
            try:
                self.client.delete(self._ours())
            except GcsError:
                pass  # it goes stale after the TTL

    def _ours(self) -> GcsObject:
        return GcsObject(self.bucket, self.name, 0, self.generation or 0, None, None, 0.0)

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

    # -- taking the lease --------------------------------------------------------------------
    def take(self, progress: Progress, sleep: Callable[[float], None] = time.sleep) -> None:
        """Hold the lease, waiting out a stopped runtime's; :class:`LeaseRefused` if a live
        runtime holds it (its generation moved while we watched)."""
        poll = min(1.0, self.interval)
        started = time.monotonic()
        seen: tuple[int, float] | None = None  # (generation, monotonic time first seen)
        while True:
            current = self.client.stat(self.bucket, self.name)
            if current is None:
                if self._write(0):
                    break
                continue  # another runtime created it just now: watch that one
            if seen is None or seen[0] != current.generation:
                if seen is not None:
                    raise LeaseRefused(
                        f"run {self.run} is in use by another runtime ({self._holder(current)}): "
                        "stop it there, or use another NAME here"
                    )
                seen = (current.generation, time.monotonic())
                who = self._holder(current)
            watched = time.monotonic() - seen[1]
            if watched >= self.ttl or time.time() - current.created > 2 * self.ttl:
                if self._write(current.generation):
                    self.waited = Waited(time.monotonic() - started, who)
                    break
                raise LeaseRefused(
                    f"run {self.run} is in use by another runtime ({who}): "
                    "stop it there, or use another NAME here"
                )
            progress.update(
                message=f"waiting up to {format_seconds(self.ttl - watched)} for the lease "
                f"of runtime {who}"
            )
            sleep(poll)

    def _holder(self, obj: GcsObject) -> str:
        try:
            return str(json.loads(read_bytes(self.client, obj)).get("holder", "?"))
        except (GcsError, ValueError, AttributeError):
            return "?"


def acquire(
    client: GcsClient,
    bucket: str,
    prefix: str,
    *,
    run: str,
    progress: Progress,
    ttl: float | None = None,
) -> GcsLease:
    """Take run ``run``'s lease below ``gs://bucket/prefix`` (see the module docstring)."""
    name = f"{prefix.strip('/')}/{LEASE_NAME}" if prefix.strip("/") else LEASE_NAME
    lease = GcsLease(client, bucket, name, run=run, ttl=lease_seconds() if ttl is None else ttl)
    lease.take(progress)
    lease.start_heartbeat()
    return lease
