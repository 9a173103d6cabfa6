"""What a checkpointed cell shows while it waits for the run's lease."""

from __future__ import annotations

import re

import pytest

from colab_magics.checkpoint.lease import DriveLeaseFiles, Lease, acquire
from colab_magics.drive import connect
from colab_magics.progress import Progress

TTL = 3.0
FOLDER = "colab_magics/checkpoints/shared"


@pytest.fixture
def client(emulator):
    c = connect(url=emulator.url, token=emulator.token)
    yield c
    c.close()


def _waits(messages: list[str]) -> list[tuple[float, str]]:
    """(seconds left, what for) of each "waiting up to N for X" message."""
    found = []
    for m in messages:
        match = re.match(r"waiting up to ([\d.]+)s for (.+)", m)
        if match:
            found.append((float(match.group(1)), match.group(2)))
    return found


def test_waiting_for_drive_to_list_the_lease_says_so(emulator, client):
    """Drive's listings lag behind writes ("files.list" is eventually consistent: a file just
    created may be missing from it), so the lease is looked for until it shows."""
    emulator.settings.update({"listing_lag": 1.5})
    progress, messages = Progress("checkpointed shared"), []
    progress.subscribe(lambda p: messages.append(p.get("message") or ""))
    lease = acquire(client, FOLDER, run="shared", progress=progress, ttl=TTL)
    lease.release()
    waits = _waits(messages)
    assert waits and all(what == "Drive to list this runtime's lease" for _, what in waits)
    assert waits[0][0] <= TTL


def test_waiting_for_a_stopped_runtime_counts_down_what_is_left(emulator, client):
    ghost = Lease(DriveLeaseFiles(client, FOLDER), run="shared", ttl=TTL)
    ghost.create()  # a runtime that then stopped: no heartbeat ever follows
    progress, messages = Progress("checkpointed shared"), []
    progress.subscribe(lambda p: messages.append(p.get("message") or ""))
    lease = acquire(client, FOLDER, run="shared", progress=progress, ttl=TTL)
    lease.release()
    waits = [(left, what) for left, what in _waits(messages) if "runtime" in what]
    assert len(waits) >= 2, messages
    assert all(f"the lease of runtime {ghost.holder} (last heartbeat" in w for _, w in waits)
    lefts = [left for left, _ in waits]
    assert lefts == sorted(lefts, reverse=True) and lefts[0] <= TTL
