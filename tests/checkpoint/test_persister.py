"""The background persister: one persist in flight, the newest snapshot queued, errors kept."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

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
