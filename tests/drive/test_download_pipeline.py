"""Big downloads through the receive / write / hash pipeline, and how each stage fails.

Drive serves a byte range of ``alt=media`` with 206 Partial Content (download guide:
https://developers.google.com/drive/api/guides/manage-downloads#partial_download), which is
what a download resumes with after a cut connection.
"""

from __future__ import annotations

import datetime
import errno
import io
import os
import threading

import google.oauth2.credentials
import pytest

from colab_magics.drive import (
    DriveAuthError,
    DriveError,
    DriveIntegrityError,
    RetryPolicy,
    TransferProgress,
)
from colab_magics.drive.download import download_to_stream
from colab_magics.drive.service import token_credentials
from colab_magics.drive.transport import Transport
from tests.drive.conftest import UNIT, make_client, payload
from tests.drive.test_transfers import _corrupt_blob

SIZE = 12 * UNIT + 123  # many ring buffers, the last one short


def _stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in ("drive-receive", "drive-hash")]


def test_a_big_file_arrives_in_one_ranged_request_and_verifies(client, tmp_path):
    data = payload(SIZE, seed=1)
    client.upload(data, "p/big.bin")
    progress = TransferProgress()
    out = tmp_path / "out" / "big.bin"
    result = client.download("p/big.bin", out, progress=progress)
    assert out.read_bytes() == data
    assert result.requests == 1 and result.bytes_received == SIZE
    assert progress.bytes_done == progress.bytes_total == SIZE
    assert os.listdir(out.parent) == ["big.bin"]  # the staging folder is gone
    assert not _stage_threads()


def test_a_receive_side_that_fails_mid_way_raises_and_leaves_no_file(emulator, tmp_path):
    """Every answer cut half way and no retry left: the error from the receiving thread is
    raised in the caller after part of the file was written, and nothing is left behind."""
    client = make_client(emulator, policy=RetryPolicy(max_attempts=1))
    data = payload(SIZE, seed=2)
    file = client.upload(data, "p/cut.bin").file
    emulator.faults.reset_stats()
    emulator.settings.update({"cut_rate": 1.0})
    out = tmp_path / "out" / "cut.bin"
    try:
        with pytest.raises(DriveError, match="connection"):
            client.download(file, out)
    finally:
        emulator.settings.faults_off()
    # The one request got its headers and half the body before the line dropped.
    assert emulator.faults.stats()["cut_response"] == 1
    assert os.listdir(out.parent) == []  # no file, no temporary, no staging folder
    assert not _stage_threads()


def test_cuts_on_every_answer_resume_from_the_last_byte_until_retries_run_out(emulator):
    """Each attempt gets half of what is left; after ``max_attempts`` failures in a row
    without a byte the download fails instead of looping."""
    client = make_client(emulator, policy=RetryPolicy(max_attempts=3, base_delay=0.001))
    data = payload(SIZE, seed=3)
    client.upload(data, "p/halves.bin")
    emulator.settings.update({"cut_rate": 1.0})
    out = io.BytesIO()
    try:
        with pytest.raises(DriveError):
            download_to_stream(client.transport, client.stat("p/halves.bin"), out, chunk_size=UNIT)
    finally:
        emulator.settings.faults_off()
    # Resumed from where each cut left off: what arrived is a prefix, written once. (How much
    # arrives varies: the cut is a reset, and a reset drops what the client had not yet read.)
    got = out.getvalue()
    assert got and data.startswith(got)


class _FullDisk(io.RawIOBase):
    """A stream whose device fills up after ``room`` bytes."""

    def __init__(self, room: int) -> None:
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return len(data)


def test_a_write_that_fails_stops_the_receiver_and_raises(client):
    data = payload(SIZE, seed=4)
    client.upload(data, "p/full.bin")
    with pytest.raises(OSError) as info:
        download_to_stream(
            client.transport, client.stat("p/full.bin"), _FullDisk(3 * UNIT), chunk_size=UNIT
        )
    assert info.value.errno == errno.ENOSPC
    assert not _stage_threads()


class _Interrupt(TransferProgress):
    def relative_update(self, inc: int) -> None:
        super().relative_update(inc)
        if self.bytes_done > 2 * UNIT:
            raise KeyboardInterrupt


def test_an_interrupt_mid_download_leaves_no_file_and_no_threads(client, tmp_path):
    client.upload(payload(SIZE, seed=5), "p/stop.bin")
    out = tmp_path / "out" / "stop.bin"
    with pytest.raises(KeyboardInterrupt):
        client.download("p/stop.bin", out, progress=_Interrupt())
    assert os.listdir(out.parent) == []
    assert not _stage_threads()


def test_a_corrupted_byte_fails_md5_and_leaves_no_file(client, emulator, tmp_path):
    data = payload(SIZE, seed=6)
    client.upload(data, "p/bad.bin")
    _corrupt_blob(tmp_path / "drive", data)
    out = tmp_path / "out" / "bad.bin"
    with pytest.raises(DriveIntegrityError):
        client.download("p/bad.bin", out)
    assert os.listdir(out.parent) == []


def test_an_expired_token_is_refreshed_once_and_a_dead_one_is_an_auth_error(client, emulator):
    """A 401 on the streamed GET refreshes the credentials and asks again, as google-auth's
    transports do; credentials that cannot refresh end in the one auth error."""
    data = payload(SIZE, seed=7)
    file = client.upload(data, "p/auth.bin").file
    refreshed: list[str] = []

    def refresh(request, scopes):
        refreshed.append("yes")
        # google-auth compares expiries as naive UTC.
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        return emulator.token, now + datetime.timedelta(hours=1)

    expired = google.oauth2.credentials.Credentials(token="stale", refresh_handler=refresh)
    out = io.BytesIO()
    download_to_stream(Transport(emulator.url, expired), file, out, chunk_size=UNIT)
    assert out.getvalue() == data and refreshed == ["yes"]

    with pytest.raises(DriveAuthError):
        download_to_stream(
            Transport(emulator.url, token_credentials("stale")), file, io.BytesIO(), chunk_size=UNIT
        )
