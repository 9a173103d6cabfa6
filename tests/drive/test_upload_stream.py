"""Uploads streamed from a seekable source: re-read after a cut, hashed once, changes caught.

Drive's resumable protocol lets a client send the rest of a file in requests of any size in
multiples of 256 KiB and, after an interruption, resume from the ``Range`` the session reports
(https://developers.google.com/drive/api/guides/manage-uploads#resumable).
"""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from colab_magics.drive import DriveIntegrityError, TransferProgress
from colab_magics.drive.checksum import Checksum
from colab_magics.drive.source import FileSource, SourceChanged
from tests.drive.conftest import UNIT, make_client, md5, payload, write


def _read_body(source: FileSource, offset: int, length: int) -> bytes:
    return b"".join(bytes(view) for view in source.body(offset, length))


def test_a_body_is_read_again_from_any_resume_point_and_hashed_once(tmp_path):
    data = payload(10 * UNIT + 77, seed=5)
    with open(write(tmp_path / "src.bin", data), "rb") as stream:
        source = FileSource(stream, len(data), 4 * UNIT, "sha1")
        try:
            body = source.body(0, source.request_length(0))
            first = iter(body)
            assert bytes(next(first)) == data[: 4 * UNIT]  # abandoned here, like a cut
            # The server kept one unit: the next request starts there and ends on the
            # request boundary, read again from the file.
            assert source.request_length(UNIT) == 3 * UNIT
            assert _read_body(source, UNIT, 3 * UNIT) == data[UNIT : 4 * UNIT]
            # httplib2 may send the same body twice: it is iterable again.
            assert b"".join(bytes(v) for v in body) == data[: 4 * UNIT]
            rest = 4 * UNIT
            while rest < len(data):
                n = source.request_length(rest)
                assert _read_body(source, rest, n) == data[rest : rest + n]
                rest += n
        finally:
            source.close()
    # Every byte once, re-reads not hashed again.
    assert source.checksum() == Checksum("sha1", hashlib.sha1(data).hexdigest())


def test_a_source_that_shrinks_mid_upload_is_refused(tmp_path):
    data = payload(16 * UNIT, seed=8)
    path = write(tmp_path / "src.bin", data)
    with open(path, "rb") as stream:
        source = FileSource(stream, len(data), 2 * UNIT, None)
        try:
            _read_body(source, 0, 2 * UNIT)
            os.truncate(path, 3 * UNIT)  # beyond what the reader can hold ahead
            with pytest.raises(SourceChanged, match="ended at byte"):
                for offset in range(2 * UNIT, len(data), 2 * UNIT):
                    _read_body(source, offset, 2 * UNIT)
        finally:
            source.close()


def test_one_request_cut_mid_body_resumes_and_verifies(emulator, tmp_path):
    # The whole file is one request body; cuts drop requests half way through.
    data = payload(24 * UNIT + 5, seed=13)
    client = make_client(emulator, chunk_size=8 * UNIT)
    emulator.settings.update({"cut_rate": 0.3, "seed": 4})
    up = client.upload(write(tmp_path / "big.bin", data), "cut/big.bin")
    emulator.settings.faults_off()
    assert client.retries >= 1
    assert up.file.md5 == md5(data) and up.file.size == len(data)
    assert up.bytes_resent <= client.retries * 8 * UNIT  # confirmed requests were not resent
    assert client.read_bytes("cut/big.bin") == data


def test_a_file_rewritten_during_upload_is_caught_and_not_kept(emulator, tmp_path):
    data = payload(8 * UNIT, seed=2)
    path = write(tmp_path / "src.bin", data)
    client = make_client(emulator, chunk_size=2 * UNIT)

    class Rewrite(TransferProgress):
        """Rewrites the file's tail (same size) once the first request is confirmed."""

        done = False

        def relative_update(self, inc: int) -> None:
            super().relative_update(inc)
            if not self.done and inc > 0:
                Rewrite.done = True
                with open(path, "r+b") as f:
                    f.seek(6 * UNIT)
                    f.write(b"\xff" * UNIT)
                st = os.stat(path)
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))

    with pytest.raises(DriveIntegrityError, match="changed while it was being uploaded"):
        client.upload(path, "moving/src.bin", progress=Rewrite())
    assert Rewrite.done
    assert [f.name for f in client.listdir("moving")] == []  # no half-right file left


def test_default_request_sizes_follow_the_source(emulator, tmp_path):
    # A seekable file goes up in 128 MiB requests (never held in memory); a stream that
    # cannot be read again in 16 MiB chunks (held until confirmed).
    data = payload(20 * 1024 * 1024 + 3, seed=9)
    client = make_client(emulator, chunk_size=None)
    up = client.upload(write(tmp_path / "f.bin", data), "sizes/file.bin")
    assert up.requests == 2  # initiate + one PUT
    assert up.file.md5 == md5(data)

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            chunk = self.inner.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    up = client.upload(Pipe(), "sizes/stream.bin")
    assert up.requests == 3  # initiate + a 16 MiB chunk + the rest
    assert up.file.md5 == hashlib.md5(data).hexdigest()
