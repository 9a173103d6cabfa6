"""With the emulator failing, cutting and rate-limiting requests, transfers still verify."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from colab_magics.drive import NO_PROGRESS, TransferProgress, listing
from colab_magics.drive.model import UploadTarget
from colab_magics.drive.resumable import ResumableUpload
from colab_magics.drive.source import SourceReader
from tests.drive.conftest import KIB, UNIT, make_client, md5, payload, write

FAULTS = {
    "error_rate": 0.1,
    "rate_limit_429": 0.02,
    "retry_after": 0.05,
    "cut_rate": 0.01,
    "seed": 1234,
}


def test_uploads_and_downloads_complete_under_faults(emulator, tmp_path):
    client = make_client(emulator)
    emulator.settings.update(FAULTS)
    files = {f"f{i}.bin": payload(size, seed=i) for i, size in enumerate(
        [0, 10, UNIT, UNIT + 1, 6 * UNIT + 5, 40 * KIB]
    )}  # fmt: skip
    progress = TransferProgress()
    pairs = [(write(tmp_path / n, d), f"faulty/{n}") for n, d in files.items()]
    out = client.upload_many(pairs, progress=progress)
    assert out.ok, out.errors
    back = client.download_many(
        [(f"faulty/{n}", tmp_path / "back" / n) for n in files], progress=progress
    )
    assert back.ok, back.errors
    for n, d in files.items():
        assert (tmp_path / "back" / n).read_bytes() == d
        assert out.results[f"faulty/{n}"].file.md5 == md5(d)
    emulator.settings.faults_off()
    listed = client.listdir("faulty")
    assert sorted(f.name for f in listed) == sorted(files)  # no duplicates from retries
    assert client.retries > 0 and progress.retries <= client.retries


def test_resumable_upload_resumes_from_where_the_server_says(emulator, tmp_path):
    # A 16 MiB file in 512 KiB chunks, with connections cut both ways.
    chunk = 2 * UNIT
    client = make_client(emulator, chunk_size=chunk)
    data = payload(16 * 1024 * KIB, seed=7)
    src = write(tmp_path / "big.bin", data)
    emulator.settings.update({"cut_rate": 0.15, "seed": 99})
    up = client.upload(src, "resume/big.bin")
    emulator.settings.faults_off()
    assert up.file.md5 == md5(data)
    assert client.retries >= 2  # cuts did happen
    # Each cut costs at most the chunk in flight, never the bytes already confirmed
    # (a restart from byte 0 would resend megabytes per cut).
    assert up.bytes_resent <= client.retries * chunk
    assert up.bytes_resent < len(data) // 4
    out = tmp_path / "back.bin"
    client.download("resume/big.bin", out)
    assert out.read_bytes() == data


def test_download_resumes_from_the_last_byte_written(emulator, tmp_path):
    client = make_client(emulator)
    data = payload(12 * UNIT, seed=5)
    client.upload(data, "d/x.bin")
    emulator.settings.update({"cut_rate": 0.3, "error_rate": 0.1, "seed": 5})
    out = tmp_path / "x.bin"
    down = client.download("d/x.bin", out)
    emulator.settings.faults_off()
    assert out.read_bytes() == data
    assert client.retries > 0
    # Cut responses waste at most a chunk each; nothing is fetched twice past that.
    assert down.bytes_received <= len(data) + client.retries * UNIT
    assert not os.path.exists(f"{out}.part")


def test_rate_limits_honour_retry_after(emulator):
    slept: list[float] = []
    client = make_client(emulator, sleep=slept.append)
    # The emulator sends whole seconds; the injected sleep means no real waiting.
    emulator.settings.update({"rate_limit_429": 0.5, "retry_after": 1, "seed": 3})
    for i in range(6):
        client.upload(b"x" * i, f"rl/{i}")
    emulator.settings.faults_off()
    assert slept and all(s >= 1 for s in slept)


@pytest.mark.slow
def test_300_mb_round_trip_with_faults(emulator, tmp_path):
    client = make_client(emulator, chunk_size=16 * 1024 * KIB, download_chunk_size=16 * 1024 * KIB)
    size, chunk = 300 * 1024 * KIB, 16 * 1024 * KIB
    src = tmp_path / "big.bin"
    digest = hashlib.md5()
    with open(src, "wb") as f:
        for i in range(300):
            block = payload(1024 * KIB, seed=i)
            digest.update(block)
            f.write(block)
    emulator.settings.update({"error_rate": 0.1, "cut_rate": 0.01, "seed": 300})
    up = client.upload(src, "huge/big.bin")
    out = tmp_path / "back.bin"
    client.download("huge/big.bin", out)
    emulator.settings.faults_off()
    assert up.file.size == size and up.file.md5 == digest.hexdigest()
    # A failed chunk costs that chunk, not the upload so far.
    assert up.bytes_resent <= client.retries * chunk
    assert up.bytes_resent < size // 2
    assert os.path.getsize(out) == size


def test_resumes_from_the_servers_range_when_it_keeps_part_of_a_chunk(emulator):
    # Chunks that are not whole 256 KiB units: the emulator, like Drive, keeps only whole
    # units of a non-final chunk and says so in the 308's Range. The client must resend from
    # there, not assume the chunk landed (a client that did would fail the md5 check).
    client = make_client(emulator)
    data = payload(4 * UNIT + 123, seed=11)
    reader = SourceReader(io.BytesIO(data))
    target = UploadTarget(name="odd.bin", parent_id=client.resolver.root.id)
    odd = UNIT + 1000
    file, sent = ResumableUpload(client.transport, reader, target, odd, len(data), NO_PROGRESS).run(
        b""
    )
    assert file.md5 == md5(data) and file.size == len(data)
    assert sent > len(data)  # the kept-back tails were sent again
    assert sent - len(data) <= 5 * 1000  # ...and nothing more than them


def test_batched_delete_and_walk_under_faults(emulator):
    client = make_client(emulator)
    ids = [client.upload(b"%d" % i, f"bd/{i % 3}/{i}").file.id for i in range(120)]
    emulator.settings.update({**FAULTS, "error_rate": 0.2, "seed": 77})
    walked = [p for p, f in client.walk("bd") if not f.is_folder]
    assert len(walked) == 120
    client.delete_ids(ids)
    emulator.settings.faults_off()
    assert [p for p, f in client.walk("bd") if not f.is_folder] == []
    assert client.retries > 0


def test_an_upload_whose_session_is_lost_starts_again(emulator, tmp_path):
    client = make_client(emulator)
    data = payload(8 * UNIT, seed=21)
    sessions = emulator.app.ctx.sessions

    class ForgetfulFile(io.BytesIO):
        """Makes the server forget every upload session once, half way through the file."""

        dropped = False

        def read(self, n=-1):
            if not self.dropped and self.tell() >= 4 * UNIT:
                ForgetfulFile.dropped = True
                for path in sessions.dir.iterdir():
                    sessions.drop(path.name)
            return super().read(n)

    progress = TransferProgress()
    up = client.upload(ForgetfulFile(data), "lost/x.bin", progress=progress)
    assert ForgetfulFile.dropped
    assert up.file.md5 == md5(data)
    assert up.bytes_sent > len(data)  # started again from byte 0
    assert progress.bytes_done == len(data)
    assert [f.name for f in client.listdir("lost")] == ["x.bin"]


def test_creates_converge_when_drive_did_the_work_but_answered_5xx(emulator, tmp_path):
    """Partial failures: each create, chunk, folder and delete may be done and answered 5xx.
    No duplicate file, folder or corrupt upload may come of the client's retries."""
    client = make_client(emulator)
    files = {f"p{i}.bin": payload(size, seed=i) for i, size in enumerate(
        [0, 10, UNIT - 1, UNIT + 7, 5 * UNIT + 3, 3 * KIB]
    )}  # fmt: skip
    pairs = [(write(tmp_path / n, d), f"partial/a/b/{n}") for n, d in files.items()]
    emulator.faults.reset_stats()
    emulator.settings.update({"error_after_rate": 0.35, "seed": 21})
    out = client.upload_many(pairs)
    assert out.ok, out.errors
    emulator.settings.faults_off()
    assert emulator.faults.stats()["error_after"] >= 5
    fresh = make_client(emulator)
    listed = fresh.listdir("partial/a/b")
    assert sorted(f.name for f in listed) == sorted(files)  # no twin from a retried create
    for f in listed:
        assert f.md5 == md5(files[f.name])
    assert [f.name for f in fresh.listdir("partial")] == ["a"]  # nor a twin folder


def test_a_create_answered_5xx_after_it_landed_is_the_generated_id(emulator):
    """The first create is carried out and answered 503; the retry finds the file by the id
    it pre-generated (files.generateIds) instead of making a second one."""
    client = make_client(emulator)
    client.ensure_folder("one")
    seen: list[str] = []

    def observer(event):
        if event.method == "POST" and event.path.endswith("/files") and not seen:
            seen.append(event.path)
            emulator.settings.update({"error_after_rate": 1.0})
            return lambda status: emulator.settings.update({"error_after_rate": 0.0})
        return None

    emulator.faults.on_request(observer)
    try:
        up = client.upload(b"exactly once", "one/x.txt")
    finally:
        emulator.faults.on_request(None)
    assert seen and emulator.faults.stats()["error_after"] == 1
    listed = make_client(emulator).listdir("one")
    assert [(f.id, f.name) for f in listed] == [(up.file.id, "x.txt")]
    assert client.retries >= 1


def test_listing_follows_short_pages_and_lists_again_when_the_token_dies(emulator):
    """Short and empty pages with a nextPageToken are not the end (files.list reference);
    a token refused because the listing changed under it means listing again, whole."""
    client = make_client(emulator)
    folder = client.ensure_folder("pages")
    for i in range(30):
        client.upload(b"%d" % i, f"pages/{i:02d}")
    emulator.settings.update({"short_page_rate": 0.8, "seed": 4})
    assert sorted(f.name for f in listing.list_children(client.transport, folder.id)) == [
        f"{i:02d}" for i in range(30)
    ]
    # A file lands between two pages (ahead of the cursor: Drive lists newest first).
    emulator.settings.update({"short_page_rate": 1.0})
    extra = make_client(emulator)
    pages_seen: list[str] = []

    def observer(event):
        if event.method == "GET" and event.path.endswith("/files") and "pageToken" in event.query:
            pages_seen.append(event.query["pageToken"][0])
            if len(pages_seen) == 1:
                extra.upload(b"late", "pages/late")
        return None

    emulator.faults.on_request(observer)
    try:
        names = [f.name for f in listing.list_children(client.transport, folder.id)]
    finally:
        emulator.faults.on_request(None)
    emulator.settings.faults_off()
    assert pages_seen
    assert sorted(names) == sorted([f"{i:02d}" for i in range(30)] + ["late"])


def test_batched_delete_retries_the_parts_that_failed(emulator):
    """Per-part 403 rate limits and 5xx inside a 200 batch: the client retries just those
    parts (housekeeping's per-part rounds) until every file is gone."""
    client = make_client(emulator)
    ids = [client.upload(b"%d" % i, f"parts/{i}").file.id for i in range(60)]
    emulator.faults.reset_stats()
    emulator.settings.update({"rate_limit_403": 0.25, "error_rate": 0.1, "seed": 8})
    client.delete_ids(ids)
    stats = emulator.faults.stats()
    emulator.settings.faults_off()
    assert client.listdir("parts") == []
    assert stats["rate_limit_403"] >= 5 and client.retries > 0
