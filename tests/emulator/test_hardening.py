"""The server under hostile input: no body read before the token, bounded bodies and connections."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from colab_magics.emulator import start_emulator
from tests.emulator.drive_helpers import error_reason, raw

REPO = Path(__file__).resolve().parents[2]
HUGE = 300 * 1000 * 1000


def _send_head(handle, head: str, *, wait: float = 5.0, until_close: bool = False) -> bytes:
    """Send only a request head on a fresh socket; what the server answers within ``wait``.

    Reads the answer's head, or everything up to the server's close with ``until_close``.
    """
    sock = socket.create_connection(("127.0.0.1", handle.port), timeout=wait)
    try:
        sock.sendall(head.encode("latin-1"))
        got = b""
        deadline = time.monotonic() + wait
        while (until_close or b"\r\n\r\n" not in got) and time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            got += data
        return got
    finally:
        sock.close()


def _head(method: str, path: str, *, length: str, token: str | None) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    lines.append("Content-Type: application/json")
    return "\r\n".join(lines) + "\r\n\r\n"


@pytest.mark.parametrize(
    "path",
    [
        "/_emulator/settings",
        "/batch/drive/v3",
        "/drive/v3/files",
        "/upload/drive/v3/files?uploadType=media",
    ],
)
def test_a_request_without_the_token_is_refused_before_its_body_is_read(emulator, path):
    """Only the head has arrived: the 401 must not wait for 300 MB that may never come."""
    answer = _send_head(emulator, _head("POST", path, length=str(HUGE), token=None))
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


@pytest.mark.parametrize("path", ["/_emulator/settings", "/batch/drive/v3", "/drive/v3/files"])
def test_a_metadata_body_past_the_cap_is_refused_unread(emulator, path):
    """Non-upload routes take small JSON or batch bodies; a huge one is 413 before reading."""
    answer = _send_head(emulator, _head("POST", path, length=str(HUGE), token=emulator.token))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_resumable_session_start_caps_its_metadata(emulator):
    """The session-start body is metadata only, although it goes to the upload path."""
    answer = _send_head(
        emulator,
        _head(
            "POST",
            "/upload/drive/v3/files?uploadType=resumable",
            length=str(HUGE),
            token=emulator.token,
        ),
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_uploads_are_not_capped(emulator, drive):
    """The cap is for metadata: a media body past it is stored whole."""
    data = os.urandom((16 << 20) + 10)
    status, _, body = raw(
        emulator,
        "POST",
        "/upload/drive/v3/files?uploadType=media&fields=size",
        body=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert status == 200 and json.loads(body) == {"size": str(len(data))}


@pytest.mark.parametrize("length", ["-5", "12abc", "+-1"])
def test_a_malformed_content_length_is_400_and_nothing_is_created(emulator, drive, length):
    """RFC 9110 8.6: Content-Length is 1*DIGIT; a negative one cannot frame the body."""
    answer = _send_head(
        emulator, _head("POST", "/drive/v3/files", length=length, token=emulator.token)
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert drive.files().list(fields="files(id)").execute()["files"] == []


def test_idle_connections_are_capped_and_the_oldest_closed(tmp_path, make_drive):
    """Sockets that send nothing hold a thread each; past the cap the oldest idle ones go."""
    handle = start_emulator(tmp_path / "d", max_idle_connections=8)
    socks = []
    try:
        for _ in range(20):
            socks.append(socket.create_connection(("127.0.0.1", handle.port), timeout=5))
            time.sleep(0.01)
        time.sleep(0.5)
        closed = 0
        for sock in socks:
            sock.settimeout(0.2)
            try:
                closed += sock.recv(1) == b""
            except TimeoutError:
                pass
            except ConnectionError:
                closed += 1
        assert closed >= 12, closed
        # A real client is still served.
        drive = make_drive(handle)
        assert drive.about().get(fields="kind").execute() == {"kind": "drive#about"}
    finally:
        for sock in socks:
            sock.close()
        handle.stop()


def test_a_refused_body_gets_google_s_json_error_and_the_connection_closes(emulator):
    answer = _send_head(
        emulator,
        _head("POST", "/drive/v3/files", length=str((16 << 20) + 1), token=emulator.token),
        until_close=True,
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"Connection: close" in head
    assert json.loads(body)["error"]["code"] == 413
    assert error_reason(body) == "requestTooLarge"


def test_allow_remote_warns_that_the_token_travels_in_clear(tmp_path):
    """--allow-remote serves a bearer token over plain HTTP: the CLI says so on stderr."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "colab_magics.emulator",
            "--root",
            str(tmp_path / "r"),
            "--host",
            "0.0.0.0",
            "--allow-remote",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://")
        proc.terminate()
        proc.wait(timeout=15)
        err = proc.stderr.read()
        assert "plain HTTP" in err and "token" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_start_emulator_warns_for_a_remote_host(tmp_path):
    with pytest.warns(RuntimeWarning, match="plain HTTP"):
        handle = start_emulator(tmp_path / "d", host="0.0.0.0", allow_remote=True)
    handle.stop()


def test_a_wrong_token_upload_still_reads_as_an_auth_failure(emulator, make_drive):
    """A modest body sent with a bad token is drained, so the client reads the 401 (and
    google-auth's failed refresh) rather than a reset connection."""
    import google.auth.exceptions
    from googleapiclient.http import MediaInMemoryUpload

    bad = make_drive(emulator, token="wrong")
    media = MediaInMemoryUpload(os.urandom(512 * 1024), mimetype="application/octet-stream")
    with pytest.raises(google.auth.exceptions.RefreshError):
        bad.files().create(body={"name": "x"}, media_body=media).execute()
