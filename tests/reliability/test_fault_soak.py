"""The fault soak at CI size: checkpoints and a push/pull complete and verify under faults.

The emulator answers 10 % of requests with a 5xx, 2 % with 429 + Retry-After, cuts 1 % of
connections half way through a body and delays every answer by up to 200 ms, from a fixed
seed: the mix ``bench/fault_soak.py`` runs at full size (1 GB of state, 10,000 files).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from colab_magics.checkpoint.api import checkpointed
from colab_magics.checkpoint.drive_store import DriveCheckpointStore
from colab_magics.progress import DONE, Progress
from colab_magics.sync import pull, push
from tests.drive.conftest import UNIT, make_client, payload
from tests.sync.conftest import make_tree, read_tree

MIX = {
    "error_rate": 0.10,
    "rate_limit_429": 0.02,
    "retry_after": 1.0,
    "cut_rate": 0.01,
    "jitter": 0.2,
    "seed": 4,  # its first 100 dice hold every kind of fault: a run this small meets them all
}
SAVE = ["model", "opt", "stats", "epoch"]
FOLDER = "soak/run"


@pytest.fixture
def faulty(emulator):
    emulator.settings.update(MIX)
    emulator.faults.reset_stats()
    return emulator


def _client(handle, chunk: int):
    # Several resumable chunks and ranged reads per big file, so cuts land inside them too.
    return make_client(handle, workers=8, chunk_size=chunk, download_chunk_size=chunk,
                       multipart_limit=4 * UNIT)  # fmt: skip


def _assert_faults_met_and_retried(handle, retries: int) -> None:
    stats = handle.faults.stats()
    errors = stats["error_500"] + stats["error_503"] + stats["rate_limit_429"]
    cuts = stats["cut_request"] + stats["cut_response"]
    assert stats["error_500"] and stats["error_503"] and stats["rate_limit_429"] and cuts, stats
    # Every error answer reached the client and was retried once; a cut before any answer
    # may instead be resent by httplib2 itself, unseen. More retries would be a retry storm.
    assert errors <= retries <= errors + cuts, (retries, stats)


# -- checkpoints ------------------------------------------------------------------------------


def _state(seed: int) -> dict:
    """About 30 MB: a 10 MiB model, Adam's 20 MiB once stepped, and a 2 MiB array."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(*[torch.nn.Linear(512, 512, bias=False) for _ in range(10)])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    stats = np.random.default_rng(seed).random(1 << 18)
    return {"model": model, "opt": opt, "stats": stats, "epoch": 0}


def _train(ns: dict) -> None:
    for p in ns["model"].parameters():
        p.grad = torch.full_like(p, 0.01 * (ns["epoch"] + 1))
    ns["opt"].step()
    ns["stats"] += 1.0
    ns["epoch"] += 1


def _saved(ns: dict) -> dict:
    state = {"model": ns["model"].state_dict(), "opt": ns["opt"].state_dict()}
    return copy.deepcopy({**state, "stats": ns["stats"], "epoch": ns["epoch"]})


def _same(a, b) -> bool:
    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _confirmed_steps(progress: Progress) -> list[int]:
    """The steps the checkpoint reports confirmed, in order, as they come."""
    steps: list[int] = []

    def note(p: Progress) -> None:
        step = p.get("confirmed_step")
        if step is not None and step not in steps:
            steps.append(step)

    progress.subscribe(note)
    return steps


@pytest.mark.slow
def test_checkpoints_complete_and_a_fresh_runtime_restores_them_exactly(
    faulty, tmp_path, monkeypatch
):
    monkeypatch.setenv("COLAB_MAGICS_STAGING", str(tmp_path / "staging"))
    ns, progress = _state(0), Progress("soak")
    confirmed = _confirmed_steps(progress)
    writer = _client(faulty, 16 * UNIT)
    store = DriveCheckpointStore(writer, FOLDER, run="soak")
    with checkpointed("soak", save=SAVE, namespace=ns, every="1", keep=2, store=store,
                      fresh=True, progress=progress) as ckpt:  # fmt: skip
        for _ in ckpt.range(3):
            ckpt.wait()  # the previous checkpoint is confirmed before the state moves on
            _train(ns)
    assert progress.state == DONE, progress.get("error")
    assert confirmed == [1, 2, 3]
    names = sorted(f.name for f in writer.listdir(FOLDER))
    assert [n.split("-")[1] for n in names if n.startswith("manifest-")] == [
        "000000002",
        "000000003",
    ]  # the oldest pruned, under faults too
    assert len([n for n in names if n.startswith("step-")]) == 2
    expected = _saved(ns)

    fresh = _state(1)  # a new runtime: other values, Adam without state
    assert not _same(_saved(fresh), expected)
    reader = _client(faulty, 16 * UNIT)
    with checkpointed("soak", save=SAVE, namespace=fresh,
                      store=DriveCheckpointStore(reader, FOLDER, run="soak"),
                      progress=Progress("soak")) as again:  # fmt: skip
        assert again.restored_from is not None and again.restored_from.step == 3
    assert _same(_saved(fresh), expected)
    _assert_faults_met_and_retried(faulty, writer.retries + reader.retries)
    writer.close()
    reader.close()


# -- push and pull ----------------------------------------------------------------------------


def _files() -> dict[str, bytes]:
    """300 files in four folders: mostly small, two that take several resumable chunks."""
    folders = ("images/train", "images/val", "labels", "")
    files = {}
    for i in range(300):
        size = 5 * UNIT + i * 1000 if i < 2 else (i * 7919) % 20_000
        rel = f"{folders[i % 4]}/f{i:03}.bin".lstrip("/")
        files[rel] = f"{rel}\n".encode() + payload(size, seed=i)
    return files


@pytest.mark.slow
def test_push_and_pull_of_300_files_complete_and_verify(faulty, tmp_path):
    files = _files()
    src = make_tree(tmp_path / "src", files, ())
    client = _client(faulty, 2 * UNIT)
    progress = Progress("push")
    pushed = push(src, "soak/files", client=client, jobs=8, progress=progress,
                  cache_dir=tmp_path / "c1")  # fmt: skip
    assert pushed.ok, pushed.errors
    assert pushed.uploaded == len(files)
    pulled = pull("soak/files", tmp_path / "back", client=client, jobs=8,
                  cache_dir=tmp_path / "c2")  # fmt: skip
    assert pulled.ok, pulled.errors
    assert pulled.downloaded == len(files) and not pulled.duplicates  # no retried create doubled
    assert read_tree(tmp_path / "back")[0] == files
    assert progress.get("retries") > 0
    _assert_faults_met_and_retried(faulty, client.retries)
    client.close()


def test_a_cut_answer_costs_one_retry_not_two(emulator):
    # httplib2 kept the connection whose answer was cut mid-body; reused, it failed the next
    # request at once (broken pipe), so every cut cost a second retry and its backoff.
    client = make_client(emulator, workers=1)
    data = [payload(3000, seed=i) for i in range(40)]
    files = [client.upload(d, f"cut/{i}.bin").file for i, d in enumerate(data)]
    emulator.settings.update({"cut_rate": 0.2, "seed": 3})
    emulator.faults.reset_stats()
    assert [client.read_bytes(f) for f in files] == data
    stats = emulator.faults.stats()
    assert stats["cut_response"] > 0
    assert client.retries == stats["cut_response"]
    client.close()
