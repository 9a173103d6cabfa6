"""The background persister: one persist in flight, the newest snapshot queued, errors kept."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest

from colab_magics.checkpoint import priority
from colab_magics.checkpoint.deadline import Deadline
from colab_magics.checkpoint.persister import Persister
from colab_magics.checkpoint.state import VALUE, Entry


def _fill(value):
    def fill(buffers):
        return [Entry("x", VALUE, value)], {}

    return fill


def test_a_due_snapshot_replaces_the_queued_one_while_one_uploads():
    release = threading.Event()
    started = threading.Event()
    persisted = []

    def stage(snapshot):
        return snapshot.step, snapshot.entries[0].data

    def upload(staged):
        started.set()
        release.wait(10)
        persisted.append(staged)
        return staged[0]

    persister = Persister(stage, upload)
    persister.take(_fill("a"), step=1)
    assert started.wait(5)
    for step in (2, 3, 4):  # step 1 is uploading: 2 and 3 are replaced by 4
        persister.take(_fill(f"v{step}"), step=step)
    assert persister.busy()
    release.set()
    assert persister.wait(10)
    assert persisted == [(1, "a"), (4, "v4")]
    assert persister.replaced == 2
    assert persister.last_result == 4
    assert persister.close(5)


def test_buffers_are_two_sets_reused_and_free_once_staged():
    seen = []
    gate = threading.Event()

    def stage(snapshot):
        seen.append(id(snapshot.buffers))

    persister = Persister(stage, lambda staged: gate.wait(10))
    for step in range(6):
        persister.take(lambda buffers: ([Entry("a", "array", np.zeros(3))], {}), step=step)
        gate.set() if step == 3 else None
    persister.close(10)
    assert len(set(seen)) <= 2


def test_a_failed_persist_is_reported_and_the_next_one_tries_again():
    errors = []
    calls = []

    def upload(step):
        calls.append(step)
        if step == 1:
            raise OSError("Drive is unreachable")
        return step

    persister = Persister(lambda s: s.step, upload, on_error=errors.append)
    persister.take(_fill(1), step=1)
    persister.wait(5)
    assert isinstance(persister.last_error, OSError) and len(errors) == 1
    persister.take(_fill(2), step=2)
    persister.wait(5)
    assert persister.last_error is None and persister.last_result == 2
    assert calls == [1, 2]
    persister.close(5)


def test_a_failing_copy_returns_its_buffers():
    persister = Persister(lambda snapshot: None, lambda staged: None)

    def broken(buffers):
        raise RuntimeError("copy failed")

    for _ in range(3):
        try:
            persister.take(broken, step=0)
        except RuntimeError:
            pass
    persister.take(_fill(1), step=1)
    assert persister.wait(5)
    persister.close(5)


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


class _OneAtATime:
    """Counts how many persists are inside stage or upload at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_a_persist_that_falls_behind_finishes_at_trainings_priority_and_the_newest_follows():
    """The next snapshot waiting makes the one in flight late: its remaining heavy work runs
    at training's priority, one persist at a time, and the newest snapshot is confirmed."""
    gate, staging = threading.Event(), threading.Event()
    once = _OneAtATime()
    nice: dict[int, list[int]] = {}
    persisted = []

    def stage(snapshot):
        with once:
            nice[snapshot.step] = [priority.run(_nice)]
            if snapshot.step == 1:
                staging.set()
                gate.wait(10)
            nice[snapshot.step].append(priority.run(_nice))
            return snapshot.step

    def upload(step):
        with once:
            persisted.append(step)
            nice[-step] = [_nice()]
            return step

    persister = Persister(stage, upload, patience=100.0)
    training = _nice()
    persister.take(_fill(1), step=1)
    assert staging.wait(5)
    assert not persister.late()
    persister.take(_fill(2), step=2)
    time.sleep(0.2)  # snapshots 0.2 s apart: a persist is late by time after 20 s only
    persister.take(_fill(3), step=3)  # replaces 2
    assert persister.late()
    gate.set()
    assert persister.wait(10)
    assert persisted == [1, 3] and persister.last_result == 3
    assert once.most == 1
    assert nice[1][0] > training and nice[1][1] == training  # late from the second piece on
    assert all(n > training for n in nice[3])  # the newest is on time: low priority again
    assert nice[-1] == nice[-3] == [training]  # uploads wait on the network at normal priority
    assert persister.late_pieces >= 1
    assert persister.close(5)


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_a_persist_is_late_once_it_takes_longer_than_its_share_of_the_interval():
    nice: dict[int, list[int]] = {}

    def stage(snapshot):
        nice[snapshot.step] = [priority.run(_nice)]
        if snapshot.step == 2:
            time.sleep(0.3)  # past 0.25 of the 0.4 s between snapshots
        nice[snapshot.step].append(priority.run(_nice))
        return snapshot.step

    persister = Persister(stage, lambda step: step, patience=0.25)
    training = _nice()
    persister.take(_fill(1), step=1)
    assert persister.wait(5)
    time.sleep(0.4)
    persister.take(_fill(2), step=2)
    assert persister.wait(5)
    assert nice[1][0] > training and nice[1][1] > training  # no interval known yet: on time
    assert nice[2][0] > training and nice[2][1] == training
    assert persister.close(5)


def test_the_persist_pauses_while_a_snapshot_is_copied():
    """The copy is the stall training feels: no persist work competes with it."""
    staging, copying = threading.Event(), threading.Event()
    in_copy = threading.Event()
    ran_during_copy = []

    def stage(snapshot):
        if snapshot.step == 1:
            staging.set()
            assert copying.wait(5)
            for _ in range(5):
                priority.run(lambda: ran_during_copy.append(in_copy.is_set()))
        return snapshot.step

    def slow_fill(buffers):
        in_copy.set()
        copying.set()
        time.sleep(0.3)
        in_copy.clear()
        return [Entry("x", VALUE, 2)], {}

    persister = Persister(stage, lambda step: step)
    persister.take(_fill(1), step=1)
    assert staging.wait(5)
    persister.take(slow_fill, step=2)
    assert persister.wait(10)
    assert ran_during_copy == [False] * 5
    assert persister.last_result == 2
    assert persister.close(5)


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_persisting_runs_at_a_lower_priority_than_training():
    seen = {}

    def stage(snapshot):
        seen["stage"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        # A thread started while persisting (an upload's reader) inherits the priority.
        reader = threading.Thread(
            target=lambda: seen.update(reader=os.getpriority(os.PRIO_PROCESS, 0))
        )
        reader.start()
        reader.join()
        return snapshot.step

    persister = Persister(stage, lambda staged: staged)
    persister.take(_fill(np.zeros(2)), step=1)
    assert persister.close(timeout=10)
    training = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen["stage"] > training
    assert seen["reader"] == seen["stage"]


def test_deadline_counts_the_margin_and_one_persist():
    age = [0.0]
    deadline = Deadline(lifetime=3600, margin=600, age=lambda: age[0])
    age[0] = 2900
    assert not deadline.near(persist_seconds=60)
    age[0] = 2950
    assert deadline.near(persist_seconds=60)
    assert deadline.seconds_left() == 650
