"""The bucket lease (``colab_magics.gcs.lease``: the Drive lease's rules on objects) against
the emulator.

What the emulator cannot show: it ignores ``ifGenerationMatch``, so a fenced holder's renewal
failing with 412 does not happen here (GCS answers 412:
https://cloud.google.com/storage/docs/request-preconditions). What it shows: a live holder's
heartbeat refuses a second runtime, a stopped one is taken over after the TTL, two takers at
once make one holder (the rules need no compare-and-swap), a release lets the next runtime in
at once, and an unrenewed lease stops commits.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from colab_magics.checkpoint.lease import Lease, LeaseRefused, LeaseUnconfirmed
from colab_magics.gcs.lease import acquire
from colab_magics.gcs.store import GcsCheckpointStore
from colab_magics.progress import Progress

TTL = 1.2


def _leases(gcs, prefix: str = "ckpt/run1/") -> list[str]:
    return [o.name[len(prefix) :] for o in gcs.list("data-bucket", prefix + "lease-")]


def test_a_live_holder_refuses_a_second_runtime(gcs, bucket):
    first = acquire(gcs, "data-bucket", "ckpt/run1", run="run1", progress=Progress("a"), ttl=TTL)
    try:
        started = time.monotonic()
        with pytest.raises(LeaseRefused, match="in use by another runtime"):
            acquire(gcs, "data-bucket", "ckpt/run1", run="run1", progress=Progress("b"), ttl=TTL)
        assert time.monotonic() - started < TTL  # refused as soon as the heartbeat moved
        assert first.valid()
    finally:
        first.release()
    assert _leases(gcs) == []


def test_a_stopped_runtime_is_waited_out_then_taken_over(gcs, bucket):
    first = acquire(gcs, "data-bucket", "ckpt/run1", run="run1", progress=Progress("a"), ttl=TTL)
    first.stop_heartbeat()  # as after a kill: the object stays, unrenewed
    progress = Progress("b")
    second = acquire(gcs, "data-bucket", "ckpt/run1", run="run1", progress=progress, ttl=TTL)
    try:
        assert second.waited is not None and second.waited.seconds >= TTL * 0.9
        assert "pid" in second.waited.holder
        assert second.valid() and not first.valid()
        assert _leases(gcs) == [f"lease-{second.token}"]  # the stopped one's is fenced
    finally:
        second.release()


def test_two_takers_at_once_make_exactly_one_holder(gcs, bucket):
    """The rules need no compare-and-swap: this holds even though the emulator ignores
    ``ifGenerationMatch``."""
    barrier = threading.Barrier(2)

    def take(name: str) -> Lease | LeaseRefused:
        barrier.wait()
        try:
            return acquire(gcs, "data-bucket", "ckpt/run1", run="run1", progress=Progress(name),
                           ttl=TTL)  # fmt: skip
        except LeaseRefused as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(take, "ab"))
    (winner,) = [o for o in outcomes if isinstance(o, Lease)]
    try:
        assert _leases(gcs) == [f"lease-{winner.token}"]  # the loser removed its own
    finally:
        winner.release()


def test_after_a_release_the_next_runtime_does_not_wait(gcs, bucket):
    first = acquire(gcs, "data-bucket", "r", run="run1", progress=Progress("a"), ttl=TTL)
    first.release()
    second = acquire(gcs, "data-bucket", "r", run="run1", progress=Progress("b"), ttl=TTL)
    try:
        assert second.waited is None
    finally:
        second.release()


def test_an_unrenewed_lease_stops_commits_and_pruning(gcs, bucket, tmp_path):
    """A holder cut off from GCS writes no manifest once its last confirmed renewal is
    TTL/2 old: a taker may be about to replace it."""
    lease = acquire(gcs, "data-bucket", "ckpt/run1", run="run1", progress=Progress("a"), ttl=TTL)
    store = GcsCheckpointStore(gcs, "gs://data-bucket/ckpt/run1", run="run1", lease=lease)
    lease.stop_heartbeat()
    time.sleep(TTL / 2 + 0.1)
    with pytest.raises(LeaseUnconfirmed, match="no checkpoint is written"):
        store.commit(str(tmp_path), [], step=1, created=0.0, progress=Progress("c"))
    assert [o.name for o in gcs.list("data-bucket", "ckpt/run1/")] == [
        f"ckpt/run1/lease-{lease.token}"
    ]
    lease.release()
