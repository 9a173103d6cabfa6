"""One runtime per run: two clients on one emulator play two runtimes (two Colab tabs).

A second runtime is refused while the first renews its lease; a runtime that stops renewing
(as after SIGKILL) is waited out, then fenced: it never writes another manifest, so on Drive
one runtime's checkpoints never interleave with the other's.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from colab_magics.checkpoint.api import checkpointed
from colab_magics.checkpoint.drive_store import DriveCheckpointStore
from colab_magics.checkpoint.lease import Lease, LeaseRefused, acquire
from colab_magics.checkpoint.manifest import Manifest
from colab_magics.checkpoint.session import CheckpointUsageError
from colab_magics.drive import connect
from colab_magics.progress import DONE, FAILED, Progress

TTL = 4.0  # renewals every 0.67 s; a loaded machine must not delay two in a row
RUN = "shared"
FOLDER = f"colab_magics/checkpoints/{RUN}"
TAKEN_OVER = f"another runtime took over run {RUN}; this runtime no longer checkpoints"


@pytest.fixture
def clients(emulator, tmp_path, monkeypatch):
    """Three clients of one Drive: three runtimes."""
    monkeypatch.setenv("COLAB_MAGICS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("COLAB_MAGICS_LEASE_SECONDS", str(TTL))
    made = [connect(url=emulator.url, token=emulator.token) for _ in range(3)]
    yield made
    for client in made:
        client.close()


def _store(client) -> DriveCheckpointStore:
    return DriveCheckpointStore(client, FOLDER, run=RUN)


def _lease_ids(client) -> list[str]:
    return sorted(f.id for f in client.listdir(FOLDER) if f.name.startswith("lease-"))


def _manifests(client) -> list[Manifest]:
    files = [f for f in client.listdir(FOLDER) if f.name.startswith("manifest-")]
    files.sort(key=lambda f: (f.created_time, f.id))
    return [Manifest.from_json(client.read_bytes(f)) for f in files]


@pytest.mark.parametrize("variant", ["resume", "fresh", "dir"])
def test_a_second_runtime_is_refused_while_the_first_renews(clients, tmp_path, variant):
    a, b, _ = clients
    ns_a, ns_b = {"w": np.zeros(3)}, {"w": np.zeros(3)}
    options = {"fresh": {"fresh": True}, "dir": {"directory": str(tmp_path / "logs")}}
    progress_a = Progress("a")
    with checkpointed(RUN, save=["w"], namespace=ns_a, every="1", keep=100, store=_store(a),
                      progress=progress_a) as ckpt_a:  # fmt: skip
        for step in ckpt_a.range(8):
            ns_a["w"] += 1
            if step != 3:
                continue
            ckpt_a.wait()
            held = _lease_ids(a)
            with (
                pytest.raises(CheckpointUsageError) as refused,
                checkpointed(
                    RUN, save=["w"], namespace=ns_b, store=_store(b), **options.get(variant, {})
                ),
            ):
                pytest.fail("the second runtime ran the block")
            assert _lease_ids(a) == held  # the loser deleted its own lease, A's stays
    message = str(refused.value)
    assert "\n" not in message
    assert f"run {RUN} is in use by another runtime ({ckpt_a.store.lease.holder}" in message
    assert message.endswith("stop it there, or use another NAME here")
    assert not ns_b["w"].any() and not (tmp_path / "logs").exists()  # nothing restored
    assert progress_a.state == DONE and progress_a.get("error") is None  # A never noticed
    holders = {m.holder for m in _manifests(a)}
    assert holders == {ckpt_a.store.lease.token} and _manifests(a)[-1].step == 8
    assert _lease_ids(a) == []  # released at the end


def test_a_runtime_that_stopped_renewing_is_waited_out_then_fenced(clients):
    a, b, _ = clients
    store_a, progress_a = _store(a), Progress("a")
    ns_a = {"w": np.zeros(3)}
    stalled, stop = threading.Event(), threading.Event()
    trained_after: list[int] = []

    def runtime_a() -> None:
        # Keeps training and trying to checkpoint every step after its heartbeat stops: a
        # runtime cut off from Drive, or frozen, is the worst case a takeover must survive.
        with checkpointed(RUN, save=["w"], namespace=ns_a, every="1", keep=100, store=store_a,
                          progress=progress_a) as ckpt:  # fmt: skip
            for step in ckpt.range(100_000):
                ns_a["w"] += 1
                time.sleep(0.01)
                if step == 5:
                    ckpt.wait()
                    store_a.lease.stop_heartbeat()  # to others: a SIGKILLed runtime
                    stalled.set()
                if progress_a.get("error") == TAKEN_OVER:
                    trained_after.append(step)
                if stop.is_set():
                    break

    thread = threading.Thread(target=runtime_a)
    thread.start()
    try:
        assert stalled.wait(30)
        progress_b, messages = Progress("b"), []
        progress_b.subscribe(lambda p: messages.append(p.get("message") or ""))
        ns_b = {"w": np.zeros(3)}
        store_b = _store(b)
        with checkpointed(RUN, save=["w"], namespace=ns_b, every="1", keep=100, store=store_b,
                          progress=progress_b) as ckpt_b:  # fmt: skip
            restored = ckpt_b.restored_from.step
            assert ns_b["w"][0] == restored
            assert store_a.lease.renew() is False  # A's next heartbeat finds its lease gone
            for _ in ckpt_b.range(restored + 6):
                ns_b["w"] += 1
                time.sleep(0.01)
        time.sleep(0.3)  # A trains on, fenced
    finally:
        stop.set()
        thread.join(30)
    waiting = [m for m in messages if m.startswith("waiting up to ")]
    assert waiting, messages
    assert f"for the lease of runtime {store_a.lease.holder} (last heartbeat" in waiting[0]
    assert ckpt_b.waited_for_lease is not None
    assert ckpt_b.waited_for_lease.holder == store_a.lease.holder
    assert progress_b.state == DONE and progress_b.get("error") is None

    assert progress_a.state == FAILED and progress_a.get("error") == TAKEN_OVER
    assert trained_after  # training went on after the takeover, without checkpoints

    manifests = _manifests(b)
    holders = [m.holder for m in manifests]
    tokens = [store_a.lease.token, store_b.lease.token]
    first_of_b = holders.index(tokens[1])
    assert holders == [tokens[0]] * first_of_b + [tokens[1]] * (len(holders) - first_of_b)
    assert manifests[first_of_b - 1].step == restored  # B resumed from A's newest
    steps = [m.step for m in manifests]
    assert steps == sorted(steps) and steps[-1] == restored + 6
    assert _lease_ids(b) == []


def test_a_fenced_dir_run_pushes_and_commits_nothing_more(clients, tmp_path):
    a = clients[0]
    logs, progress = tmp_path / "logs", Progress("a")
    with checkpointed(RUN, directory=str(logs), store=_store(a), progress=progress) as ckpt:
        lease = ckpt.store.lease
        a.delete_ids([lease.file.id])  # what a runtime taking over does to a stale lease
        assert lease.renew() is False
        (logs / "after.txt").write_text("written after the takeover")
    assert progress.state == FAILED and progress.get("error") == TAKEN_OVER
    pushed = {f.name for f in a.listdir(f"{FOLDER}/dir")} if a.exists(f"{FOLDER}/dir") else set()
    assert "after.txt" not in pushed
    assert not [f for f in a.listdir(FOLDER) if f.name.startswith("manifest-")]


@pytest.mark.parametrize("ending", [None, ValueError, KeyboardInterrupt])
def test_the_lease_is_released_however_the_cell_ends(clients, ending):
    a, b, _ = clients

    def cell(client, ending=None):
        with checkpointed(RUN, save=["w"], namespace={"w": np.zeros(2)}, every="1h",
                          store=_store(client)) as ckpt:  # fmt: skip
            assert len(_lease_ids(client)) == 1
            for step in ckpt.range(3):
                if ending is not None and step == 1:
                    raise ending("the cell failed")
        return ckpt

    if ending is None:
        cell(a)
    else:
        with pytest.raises(ending):
            cell(a, ending)
    assert _lease_ids(a) == []
    assert cell(b).waited_for_lease is None  # the next runtime takes it at once


@pytest.mark.parametrize(
    ("dead_holder", "listing_lag"),
    [(False, 0.0), (True, 0.0), (False, 1.0)],
    ids=["free", "after-a-dead-holder", "listing-lag"],
)
def test_two_takers_at_once_make_exactly_one_holder(clients, emulator, dead_holder, listing_lag):
    a, b, c = clients
    a.ensure_folder(FOLDER)  # two first-ever runs racing to make the folder is another matter
    if dead_holder:
        acquire(a, FOLDER, run=RUN, progress=Progress("a"), ttl=TTL).stop_heartbeat()
    emulator.settings.update({"listing_lag": listing_lag})
    barrier = threading.Barrier(2)
    outcomes: dict[str, Lease | LeaseRefused] = {}

    def take(name: str, client) -> None:
        barrier.wait()
        try:
            outcomes[name] = acquire(client, FOLDER, run=RUN, progress=Progress(name), ttl=TTL)
        except LeaseRefused as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=take, args=pair) for pair in (("b", b), ("c", c))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [o for o in outcomes.values() if isinstance(o, Lease)]
    assert len(outcomes) == 2 and len(winners) == 1, outcomes
    (winner,) = winners
    try:
        assert winner.valid()
        assert _lease_ids(a) == [winner.file.id]  # the loser's and the dead one's are gone
    finally:
        winner.release()


def test_manifests_name_their_holder_and_older_ones_still_read():
    manifest = Manifest(run=RUN, step=4, created=1.5, blobs=(), holder="0f" * 8)
    assert Manifest.from_json(manifest.to_json()).holder == "0f" * 8
    before_leases = json.loads(manifest.to_json())
    del before_leases["holder"]
    assert Manifest.from_json(json.dumps(before_leases).encode()) == Manifest(
        run=RUN, step=4, created=1.5, blobs=(), versions={}
    )


def test_a_bad_lease_setting_is_a_usage_error(clients, monkeypatch):
    monkeypatch.setenv("COLAB_MAGICS_LEASE_SECONDS", "soon")
    with (
        pytest.raises(CheckpointUsageError, match="COLAB_MAGICS_LEASE_SECONDS='soon'"),
        checkpointed(RUN, save=["w"], namespace={"w": 1}, store=_store(clients[0])),
    ):
        pass


def test_a_taker_with_a_shorter_lease_time_honours_the_holders(clients):
    """Runtimes may differ in COLAB_MAGICS_LEASE_SECONDS: the holder's own time decides when
    its lease is stale, so a taker with a shorter one neither fences a live holder..."""
    a, b, _ = clients
    holder = acquire(a, FOLDER, run=RUN, progress=Progress("a"), ttl=12.0)  # renews every 2 s
    try:
        with pytest.raises(LeaseRefused, match=f"run {RUN} is in use by another runtime"):
            acquire(b, FOLDER, run=RUN, progress=Progress("b"), ttl=1.0)
        assert holder.renew() and holder.lost is None
        assert _lease_ids(a) == [holder.file.id]
        assert a.file(holder.file.id).app_properties["ttl"] == "12"  # the time, in its lease
    finally:
        holder.release()


def test_a_taker_with_a_longer_lease_time_waits_only_for_the_holders(clients):
    """...nor does one with a longer time wait longer than the holder's lease lasts."""
    a, b, _ = clients
    acquire(a, FOLDER, run=RUN, progress=Progress("a"), ttl=1.0).stop_heartbeat()
    started = time.monotonic()
    taker = acquire(b, FOLDER, run=RUN, progress=Progress("b"), ttl=60.0)
    try:
        assert time.monotonic() - started < 15
        assert taker.waited is not None and taker.valid()
    finally:
        taker.release()
