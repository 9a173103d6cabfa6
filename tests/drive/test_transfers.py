"""Uploads and downloads through the emulator over HTTP: sizes, md5 both ways, update in place."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from colab_magics.drive import (
    DriveDuplicateError,
    DriveIntegrityError,
    DriveNotFound,
    TransferProgress,
)
from tests.drive.conftest import KIB, UNIT, md5, payload, write

SIZES = [0, 1, 1000, UNIT, UNIT + 1, 3 * UNIT + 17]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_verifies_md5_both_ways(client, tmp_path, size):
    data = payload(size, seed=size)
    src = write(tmp_path / "src.bin", data)
    up = client.upload(src, "runs/r1/file.bin")
    assert up.file.md5 == md5(data) and up.file.size == size
    assert up.bytes_resent == 0
    out = tmp_path / "back" / "file.bin"
    down = client.download("runs/r1/file.bin", out)
    assert out.read_bytes() == data
    assert down.file.id == up.file.id
    assert not os.path.exists(f"{out}.part")


def test_resumable_upload_goes_in_chunks_and_reports_progress(client, tmp_path):
    data = payload(5 * UNIT + 3)
    progress = TransferProgress()
    up = client.upload(write(tmp_path / "a", data), "big.bin", progress=progress)
    # One initiation plus six chunk PUTs (five full 256 KiB chunks and the 3-byte tail).
    assert up.requests >= 7
    assert progress.bytes_done == progress.bytes_total == len(data)
    assert progress.files_done == 1
    assert client.read_bytes("big.bin") == data


def test_unseekable_stream_upload(client):
    data = payload(3 * UNIT + 5, seed=3)

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            chunk = self.inner.read(min(len(b), 70_000))  # short reads, like a pipe
            b[: len(chunk)] = chunk
            return len(chunk)

    up = client.upload(Pipe(), "streams/s.bin")
    assert up.file.md5 == md5(data) and up.file.size == len(data)
    assert client.read_bytes("streams/s.bin") == data


def test_bytes_source_and_mount_and_drive_paths_are_one_file(client, emulator):
    client.mount_root = "/mnt/drive"
    up = client.upload(b"hello", "drive:notes/a.txt")
    assert client.stat("/mnt/drive/notes/a.txt").id == up.file.id
    assert client.stat("notes/a.txt").id == up.file.id
    assert client.stat("/content/drive/MyDrive/notes/a.txt").id == up.file.id


def test_update_in_place_keeps_the_id(client, tmp_path):
    first = client.upload(b"v1", "ck/model.pt")
    bigger = payload(2 * UNIT + 9)
    second = client.upload(write(tmp_path / "m", bigger), "ck/model.pt")
    assert second.file.id == first.file.id
    assert client.read_bytes("ck/model.pt") == bigger
    third = client.upload(b"v3", file_id=first.file.id)
    assert third.file.id == first.file.id and third.file.md5 == md5(b"v3")
    assert [f.name for f in client.listdir("ck")] == ["model.pt"]


def test_replace_false_makes_a_new_file_and_resolution_keeps_the_oldest(client):
    first = client.upload(b"one", "dup/x", replace=False)
    client.upload(b"two", "dup/x", replace=False)
    assert len(client.listdir("dup")) == 2
    client.resolver.cache.clear()
    with pytest.warns(UserWarning, match="2 files on Drive"):
        assert client.resolve("dup/x").file.id == first.file.id
    client.resolver.cache.clear()
    with pytest.raises(DriveDuplicateError) as info:
        client.resolve("dup/x", unique=True)
    assert first.file.id in info.value.ids and len(info.value.ids) == 2


def test_expected_md5_mismatch_deletes_the_new_file(client, tmp_path):
    for data in (b"small", payload(2 * UNIT)):
        with pytest.raises(DriveIntegrityError, match="did not verify"):
            client.upload(data, "bad/x.bin", md5="0" * 32)
    assert client.listdir("bad") == []


def _corrupt_blob(root, data: bytes) -> None:
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            if os.path.getsize(path) == len(data) and Path(path).read_bytes() == data:
                with open(path, "r+b") as f:
                    f.seek(len(data) // 2)
                    f.write(b"\xff" if data[len(data) // 2] != 0xFF else b"\x00")
                return
    raise AssertionError("blob not found in the emulator's storage")


@pytest.mark.parametrize("size", [3 * UNIT, UNIT // 2])  # written behind / in one chunk
def test_corrupted_content_never_lands_under_the_final_name(client, emulator, tmp_path, size):
    data = payload(size, seed=9)
    client.upload(data, "c/x.bin")
    _corrupt_blob(tmp_path / "drive", data)
    out = tmp_path / "out" / "x.bin"
    with pytest.raises(DriveIntegrityError):
        client.download("c/x.bin", out)
    assert not out.exists() and not os.path.exists(f"{out}.part")


def test_unknown_path_is_not_found_and_writes_nothing(client, tmp_path):
    out = tmp_path / "y.bin"
    with pytest.raises(DriveNotFound, match="nowhere"):
        client.download("nowhere/y.bin", out)
    assert not out.exists()
    with pytest.raises(DriveNotFound):
        client.file("no-such-id")


def test_many_files_in_parallel(client, tmp_path):
    files = {f"f{i:03d}.bin": payload(i * 97 * KIB // 10, seed=i) for i in range(30)}
    pairs = [(write(tmp_path / n, d), f"many/{n}") for n, d in files.items()]
    progress = TransferProgress()
    out = client.upload_many(pairs, progress=progress)
    assert out.ok, out.errors
    assert progress.files_done == 30 and progress.bytes_done == sum(map(len, files.values()))
    listed = {f.name: f.md5 for f in client.listdir("many")}
    assert listed == {n: md5(d) for n, d in files.items()}
    back = client.download_many([(f"many/{n}", tmp_path / "back" / n) for n in files])
    assert back.ok, back.errors
    for n, d in files.items():
        assert (tmp_path / "back" / n).read_bytes() == d


def test_progress_feeds_the_ui_progress_model(client, tmp_path):
    from colab_magics.progress import Progress

    model = Progress("upload")
    data = payload(3 * UNIT)
    client.upload(write(tmp_path / "p", data), "p.bin", progress=TransferProgress(model))
    assert model.get("bytes_done") == model.get("bytes_total") == len(data)
    assert model.get("files_done") == 1 and model.get("errors") == 0


def test_one_progress_over_several_transfers_totals_every_file(client, tmp_path):
    """A callback shared by several uploads and downloads counts each file's size once: each
    transfer sets the size of its own branch (fsspec's ``branched``), not the shared total."""
    sizes = [UNIT + 7, 3 * KIB, 2 * UNIT]
    progress = TransferProgress()
    for i, size in enumerate(sizes):
        client.upload(write(tmp_path / f"s{i}", payload(size, seed=i)), f"s/{i}", progress=progress)
    assert progress.bytes_total == progress.bytes_done == sum(sizes)
    assert progress.files_done == 3
    back = TransferProgress()
    out = client.download_many(
        [(f"s/{i}", tmp_path / "b" / str(i)) for i in range(3)], progress=back
    )
    assert out.ok, out.errors
    assert back.bytes_total == back.bytes_done == sum(sizes) and back.files_total == 3
