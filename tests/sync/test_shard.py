"""push(shard=N) and sharded(): small folders on Drive, names and paths read back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from colab_magics.sync import SyncError, pull, push, sharded
from tests.sync.conftest import make_tree


def files(n: int, start: int = 0) -> dict[str, bytes]:
    return {f"img_{i:04}.jpg": f"image {i}".encode() for i in range(start, start + n)}


def test_flat_folder_is_laid_out_in_shards_and_read_back(client, tmp_path, cache_dir):
    data = files(25)
    src = make_tree(tmp_path / "src", data, ())
    report = push(src, "ds", client=client, shard=10, cache_dir=cache_dir)
    assert report.ok and report.uploaded == 25
    top = sorted(f.name for f in client.listdir("ds"))
    assert top == ["000", "001", "002", "_shards.json"]
    assert [len(client.listdir(f"ds/{s}")) for s in ("000", "001", "002")] == [10, 10, 5]

    on_drive = dict(sharded("ds", client=client))
    assert sorted(on_drive) == sorted(data)
    assert client.read_bytes(on_drive["img_0017.jpg"]) == data["img_0017.jpg"]

    pull("ds", tmp_path / "copy", client=client, cache_dir=cache_dir)
    local = dict(sharded(tmp_path / "copy"))
    assert {n: Path(p).read_bytes() for n, p in local.items()} == data


def test_new_files_fill_shards_without_moving_old_ones(client, tmp_path, cache_dir):
    src = make_tree(tmp_path / "src", files(25), ())
    push(src, "ds", client=client, shard=10, cache_dir=cache_dir)
    before = dict(sharded("ds", client=client))
    make_tree(src, files(8, start=100), ())
    report = push(src, "ds", client=client, shard=10, cache_dir=cache_dir)
    assert report.uploaded == 8 and report.skipped == 25
    after = dict(sharded("ds", client=client))
    assert {n: after[n] for n in before} == before
    assert [len(client.listdir(f"ds/{s}")) for s in ("000", "001", "002", "003")] == [10, 10, 10, 3]
    again = push(src, "ds", client=client, shard=10, cache_dir=cache_dir)
    assert again.uploaded == 0


def test_delete_drops_gone_files_from_shards_and_index(client, tmp_path, cache_dir):
    src = make_tree(tmp_path / "src", files(12), ())
    push(src, "ds", client=client, shard=5, cache_dir=cache_dir)
    for i in range(10, 12):
        os.unlink(src / f"img_{i:04}.jpg")
    report = push(src, "ds", client=client, shard=5, delete=True, cache_dir=cache_dir)
    assert report.deleted == 1  # shard 002 held just these two: the folder goes
    index = json.loads(client.read_bytes("ds/_shards.json"))
    assert len(index["files"]) == 10 and not client.exists("ds/002")


def test_shard_needs_a_flat_folder_and_an_index(client, tmp_path, cache_dir):
    src = make_tree(tmp_path / "src", {"a.jpg": b"1", "sub/b.jpg": b"2"}, ())
    with pytest.raises(SyncError, match="has subfolders"):
        push(src, "ds", client=client, shard=10, cache_dir=cache_dir)
    with pytest.raises(SyncError, match="not a sharded folder"):
        list(sharded(tmp_path / "src"))
    client.ensure_folder("plain")
    with pytest.raises(SyncError, match="not a sharded folder"):
        list(sharded("plain", client=client))
