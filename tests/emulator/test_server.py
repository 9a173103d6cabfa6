"""The server around the app: auth, persistence across restarts, loopback only, and the CLI."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import google.auth.exceptions
import pytest

from colab_magics.emulator import start_emulator
from tests.emulator.drive_helpers import error_reason, md5, raw, start_session, upload

REPO = Path(__file__).resolve().parents[2]


def test_wrong_token_is_refresh_error_in_the_client_and_401_on_the_wire(emulator, make_drive):
    bad = make_drive(emulator, token="not-the-token")
    with pytest.raises(google.auth.exceptions.RefreshError):
        bad.files().list().execute()
    for token in ("not-the-token", ""):
        status, headers, body = raw(emulator, "GET", "/drive/v3/files", token=token)
        assert status == 401 and error_reason(body) == "authError"
        assert headers["www-authenticate"].startswith("Bearer")
        assert emulator.token not in body.decode()
    status, _, _ = raw(
        emulator,
        "GET",
        "/drive/v3/files",
        headers={"Authorization": f"Basic {emulator.token}"},
        token="",
    )
    assert status == 401
    # Uploads and unknown routes are guarded too.
    status, _, _ = raw(
        emulator, "POST", "/upload/drive/v3/files?uploadType=media", body=b"x", token="nope"
    )
    assert status == 401


def test_state_survives_a_restart(tmp_path, make_drive):
    root = tmp_path / "drive"
    data = os.urandom(300_000)
    rest = os.urandom(100_000)
    with start_emulator(root, token="t0ken-for-restart") as first:
        drive = make_drive(first)
        kept = upload(drive, data, name="kept.bin")
        trashed = upload(drive, b"bye", name="trashed.bin")
        drive.files().update(fileId=trashed["id"], body={"trashed": True}).execute()
        root_id = drive.files().get(fileId="root", fields="id").execute()["id"]
        session = start_session(first, total=256 * 1024 + len(rest))
        status, _, _ = raw(
            first,
            "PUT",
            session,
            body=data[: 256 * 1024],
            headers={"Content-Range": f"bytes 0-{256 * 1024 - 1}/{256 * 1024 + len(rest)}"},
        )
        assert status == 308
        token = drive.changes().getStartPageToken().execute()["startPageToken"]
    with start_emulator(root, token="t0ken-for-restart") as second:
        drive = make_drive(second)
        assert drive.files().get(fileId="root", fields="id").execute()["id"] == root_id
        got = drive.files().get(fileId=kept["id"], fields="name,md5Checksum,size").execute()
        assert got == {"name": "kept.bin", "md5Checksum": md5(data), "size": str(len(data))}
        assert drive.files().get_media(fileId=kept["id"]).execute() == data
        assert drive.files().get(fileId=trashed["id"], fields="trashed").execute()["trashed"]
        assert (
            drive.about().get(fields="storageQuota").execute()["storageQuota"]["usageInDriveTrash"]
            == "3"
        )
        # The unfinished session goes on where it stood, on the new port.
        session = session.replace(first.url, second.url)
        total = 256 * 1024 + len(rest)
        status, headers, _ = raw(
            second, "PUT", session, headers={"Content-Range": f"bytes */{total}"}
        )
        assert status == 308 and headers["range"] == f"bytes=0-{256 * 1024 - 1}"
        status, _, body = raw(
            second,
            "PUT",
            session,
            body=rest,
            headers={"Content-Range": f"bytes {256 * 1024}-{total - 1}/{total}"},
        )
        assert status == 201
        assert json.loads(body)["md5Checksum"] == md5(data[: 256 * 1024] + rest)
        changes = drive.changes().list(pageToken=token, fields="changes(fileId)").execute()
        assert [c["fileId"] for c in changes["changes"]] == [json.loads(body)["id"]]


def test_non_loopback_host_is_refused_unless_allowed(tmp_path):
    with pytest.raises(ValueError, match="allow_remote"):
        start_emulator(tmp_path / "d", host="0.0.0.0")


def test_handle_basics(tmp_path, make_drive):
    handle = start_emulator(tmp_path / "d", token="fixed-token")
    assert handle.url.startswith("http://127.0.0.1:") and handle.url.endswith("/")
    assert handle.token == "fixed-token" and handle.root == tmp_path / "d"
    assert handle.mount is None
    # Ready on return: the first request is answered.
    assert make_drive(handle).about().get(fields="kind").execute() == {"kind": "drive#about"}
    handle.stop()
    handle.stop()  # idempotent
    with pytest.raises(OSError):
        raw(handle, "GET", "/drive/v3/about?fields=kind")
    generated = start_emulator(tmp_path / "e")
    try:
        assert len(generated.token) >= 40
    finally:
        generated.stop()


def test_cli_prints_the_url_first_serves_and_exits_on_sigterm(tmp_path):
    root = tmp_path / "cli"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "colab_magics.emulator",
            "--root",
            str(root),
            "--quota-bytes",
            "5000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        token_file = root / "token"
        token = token_file.read_text()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

        class Handle:
            pass

        handle = Handle()
        handle.url, handle.token = url, token
        status, _, body = raw(handle, "GET", "/drive/v3/about?fields=storageQuota(limit)")
        assert status == 200 and json.loads(body) == {"storageQuota": {"limit": "5000"}}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        err = proc.stderr.read()
        assert str(token_file) in err and token not in err
        assert token not in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_connections_are_kept_alive_and_cut_by_stop(tmp_path):
    handle = start_emulator(tmp_path / "d")
    conn = http.client.HTTPConnection("127.0.0.1", int(handle.url.rsplit(":", 1)[1].strip("/")))
    auth = {"Authorization": f"Bearer {handle.token}"}
    try:
        peers = set()
        for _ in range(3):
            conn.request("GET", "/drive/v3/about?fields=kind", headers=auth)
            resp = conn.getresponse()
            assert resp.status == 200 and resp.getheader("Connection") != "close"
            resp.read()
            peers.add(conn.sock.getsockname())
        assert len(peers) == 1  # one TCP connection served all three
        # An error answered before the body was read leaves the connection usable.
        conn.request("DELETE", "/drive/v3/files/nope", body=b"x" * 100_000, headers=auth)
        resp = conn.getresponse()
        assert resp.status == 404
        resp.read()
        conn.request("GET", "/drive/v3/about?fields=kind", headers=auth)
        assert conn.getresponse().read() == b'{"kind":"drive#about"}'
        handle.stop()
        # The idle connection is closed too: no request reaches a stopped emulator.
        with pytest.raises((OSError, http.client.HTTPException)):
            conn.request("GET", "/drive/v3/about?fields=kind", headers=auth)
            conn.getresponse().read()
    finally:
        conn.close()
        handle.stop()


def test_parallel_clients(emulator, make_drive):
    def work(i: int) -> list[str]:
        drive = make_drive(emulator)  # httplib2 is not thread-safe: one client per thread
        out = []
        for j in range(5):
            data = os.urandom(70_000 + i * 1000 + j)
            f = upload(drive, data, name=f"t{i}-{j}", resumable=j % 2 == 0, chunksize=256 * 1024)
            assert f["md5Checksum"] == md5(data)
            drive.files().list(q=f"name = 't{i}-{j}'", fields="files(id)").execute()
            out.append(f["id"])
        return out

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        ids = [i for chunk in pool.map(work, range(6)) for i in chunk]
    assert len(set(ids)) == 30
    listed = make_drive(emulator).files().list(pageSize=1000, fields="files(id)").execute()
    assert {f["id"] for f in listed["files"]} == set(ids)
