"""Fault injection and the control endpoint, seen through real clients over loopback HTTP."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import threading
import time
from urllib.parse import urlsplit

import httplib2
import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaInMemoryUpload, MediaIoBaseUpload

from colab_magics.emulator.faults import DROP

# What a client may see when the server drops the line mid-body: all immediate, never a timeout.
TRANSPORT_ERRORS = (ConnectionError, http.client.HTTPException, httplib2.HttpLib2Error)


def raw(emulator, method, path, body=None, *, token=None, headers=None):
    """One plain http.client request to the emulator: (status, headers, body)."""
    url = urlsplit(emulator.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def control(emulator, method, path, body=None):
    status, _, data = raw(emulator, method, "/_emulator/" + path, body, token=emulator.token)
    assert status == 200, data
    return json.loads(data)


def fast_backoff(request):
    """Shrink the client's retry back-off (its own hooks) so retried tests stay quick."""
    request._rand = lambda: 0.005
    return request


def reason(error: HttpError) -> str:
    return json.loads(error.content)["error"]["errors"][0]["reason"]


# -- control endpoint ------------------------------------------------------------------------


def test_settings_round_trip(emulator):
    assert control(emulator, "GET", "settings") == emulator.settings.as_dict()
    new = control(emulator, "PATCH", "settings", {"latency": 0.01, "error_rate": 0.25, "seed": 7})
    assert (new["latency"], new["error_rate"], new["seed"]) == (0.01, 0.25, 7)
    assert emulator.settings.error_rate == 0.25
    assert control(emulator, "POST", "settings", {"retry_after": 3})["retry_after"] == 3
    assert control(emulator, "GET", "settings") == emulator.settings.as_dict()


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_control_endpoint_refuses_without_the_token(emulator, token):
    for method, body in [("GET", None), ("PATCH", {"error_rate": 1.0})]:
        status, headers, data = raw(emulator, method, "/_emulator/settings", body, token=token)
        assert status == 401
        assert json.loads(data)["error"]["errors"][0]["reason"] == "authError"
    assert emulator.settings.error_rate == 0.0
    assert raw(emulator, "GET", "/_emulator/stats", token=token)[0] == 401


@pytest.mark.parametrize(
    "patch",
    [
        {"no_such_setting": 1},
        {"error_rate": "high"},
        {"cut_rate": 1.5},
        {"latency": -1},
        {"seed": 1.5},
        {"error_rate": True},
        {"quota_bytes": None, "listing_lag": None},
        [1, 2],
    ],
)
def test_bad_settings_are_refused_and_change_nothing(emulator, patch):
    before = emulator.settings.as_dict()
    status, _, data = raw(emulator, "PATCH", "/_emulator/settings", patch, token=emulator.token)
    assert status == 400
    assert json.loads(data)["error"]["code"] == 400
    assert emulator.settings.as_dict() == before


def test_control_endpoint_is_never_faulted(emulator):
    control(emulator, "POST", "stats/reset")
    emulator.settings.update({"error_rate": 1.0, "cut_rate": 1.0, "rate_limit_429": 1.0})
    for _ in range(10):
        assert control(emulator, "GET", "settings")["error_rate"] == 1.0
    assert control(emulator, "GET", "stats")["requests"] == 0


# -- injected errors -------------------------------------------------------------------------


def test_error_rate_gives_backend_errors_500_and_503(emulator, drive):
    emulator.settings.update({"error_rate": 1.0, "seed": 3})
    statuses = set()
    for _ in range(12):
        with pytest.raises(HttpError) as info:
            drive.files().list().execute()
        statuses.add(info.value.resp.status)
        assert reason(info.value) == "backendError"
    assert statuses == {500, 503}
    emulator.settings.faults_off()
    assert drive.files().list().execute()["files"] == []


def test_429_carries_retry_after(emulator, drive):
    emulator.settings.update({"rate_limit_429": 1.0, "retry_after": 6.2})
    with pytest.raises(HttpError) as info:
        drive.files().list().execute()
    assert info.value.resp.status == 429
    assert info.value.resp["retry-after"] == "7"
    assert reason(info.value) == "rateLimitExceeded"


def test_403_user_rate_limit(emulator, drive):
    emulator.settings.update({"rate_limit_403": 1.0})
    with pytest.raises(HttpError) as info:
        drive.files().list().execute()
    assert info.value.resp.status == 403
    assert reason(info.value) == "userRateLimitExceeded"


def test_injected_error_consumes_the_request_body(emulator):
    emulator.settings.update({"error_rate": 1.0})
    body = os.urandom(3 << 20)
    status, headers, data = raw(
        emulator,
        "POST",
        "/upload/drive/v3/files?uploadType=media",
        body,
        token=emulator.token,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert status in (500, 503)
    assert json.loads(data)["error"]["errors"][0]["reason"] == "backendError"


def test_retries_get_through_a_30_percent_error_rate(emulator, drive):
    emulator.settings.update({"error_rate": 0.3, "seed": 11})
    names = [f"f{i:02}" for i in range(12)]
    for name in names:
        fast_backoff(drive.files().create(body={"name": name})).execute(num_retries=8)
    emulator.settings.faults_off()
    listed = drive.files().list(fields="files(name)").execute()["files"]
    assert sorted(f["name"] for f in listed) == names
    stats = control(emulator, "GET", "stats")
    assert stats["error_500"] + stats["error_503"] > 0


def test_the_seed_makes_faults_reproducible(emulator, drive):
    def outcomes():
        seen = []
        for _ in range(16):
            try:
                drive.about().get(fields="user").execute()
                seen.append(200)
            except HttpError as e:
                seen.append(e.resp.status)
        return seen

    control(emulator, "PATCH", "settings", {"error_rate": 0.5, "seed": 5})
    first = outcomes()
    control(emulator, "PATCH", "settings", {"seed": 5})  # setting the seed restarts the dice
    assert outcomes() == first
    emulator.settings.update({"seed": 6})  # a new value, even set directly, reseeds too
    assert outcomes() != first
    assert 200 in first and set(first) - {200}


def test_stats_count_and_reset(emulator, drive):
    control(emulator, "POST", "stats/reset")
    emulator.settings.update({"rate_limit_403": 1.0})
    for _ in range(3):
        with pytest.raises(HttpError):
            drive.files().list().execute()
    stats = control(emulator, "GET", "stats")
    assert stats["requests"] == 3 and stats["rate_limit_403"] == 3
    assert control(emulator, "POST", "stats/reset")["requests"] == 0


# -- latency -----------------------------------------------------------------------------------


def test_latency_and_jitter_are_added(emulator, drive):
    def timed():
        start = time.monotonic()
        drive.files().list().execute()
        return time.monotonic() - start

    fast = min(timed() for _ in range(3))
    emulator.settings.update({"latency": 0.3})
    assert 0.3 <= timed() < 0.3 + fast + 1.0
    emulator.settings.update({"latency": 0.0, "jitter": 0.2, "seed": 1})
    jittered = [timed() for _ in range(6)]
    assert all(t < 0.2 + fast + 0.5 for t in jittered)
    assert max(jittered) - min(jittered) > 0.02


# -- connection cuts ---------------------------------------------------------------------------


def _upload(drive, data: bytes, name: str = "blob.bin") -> dict:
    media = MediaInMemoryUpload(data, mimetype="application/octet-stream")
    request = drive.files().create(body={"name": name}, media_body=media, fields="id")
    return request.execute()


def test_cut_mid_response_is_an_immediate_transport_error(emulator, drive, capfd):
    data = os.urandom(1 << 20)
    file_id = _upload(drive, data)["id"]
    emulator.settings.update({"cut_rate": 1.0})
    start = time.monotonic()
    with pytest.raises(TRANSPORT_ERRORS):
        drive.files().get_media(fileId=file_id).execute()
    with pytest.raises(TRANSPORT_ERRORS):
        raw(emulator, "GET", f"/drive/v3/files/{file_id}?alt=media", token=emulator.token)
    assert time.monotonic() - start < 5
    stats = control(emulator, "GET", "stats")
    assert stats["cut_response"] >= 2 and stats["cut_request"] == 0
    emulator.settings.faults_off()
    # httplib2 keeps the connection a body was cut on: the next request on it fails once
    # (BrokenPipeError) and then reconnects, so a retry is what gets through.
    assert fast_backoff(drive.files().get_media(fileId=file_id)).execute(num_retries=2) == data
    assert "Traceback" not in capfd.readouterr().err


def test_cut_mid_request_is_a_transport_error_and_the_request_is_lost(emulator, drive, capfd):
    emulator.settings.update({"cut_rate": 1.0})
    start = time.monotonic()
    with pytest.raises(TRANSPORT_ERRORS):
        _upload(drive, os.urandom(2 << 20))
    with pytest.raises(TRANSPORT_ERRORS):
        raw(
            emulator,
            "POST",
            "/upload/drive/v3/files?uploadType=media",
            os.urandom(2 << 20),
            token=emulator.token,
            headers={"Content-Type": "application/octet-stream"},
        )
    assert time.monotonic() - start < 5
    assert control(emulator, "GET", "stats")["cut_request"] >= 2
    emulator.settings.faults_off()
    assert fast_backoff(drive.files().list()).execute(num_retries=2)["files"] == []
    assert "Traceback" not in capfd.readouterr().err


# -- request observer ------------------------------------------------------------------------


@pytest.fixture
def observe(emulator):
    """``observe(callback)``: set the emulator's request observer for the rest of the test."""
    yield emulator.faults.on_request
    emulator.faults.on_request(None)


def _eventually(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def test_observer_sees_drive_requests_but_not_control_ones(emulator, drive, observe):
    seen = []
    observe(lambda event: seen.append(event))
    drive.files().list(q="trashed = false", pageSize=7).execute()
    control(emulator, "GET", "stats")
    assert [(e.method, e.path) for e in seen] == [("GET", "/drive/v3/files")]
    assert seen[0].query["q"] == ["trashed = false"] and seen[0].query["pageSize"] == ["7"]
    assert seen[0].headers["authorization"] == f"Bearer {emulator.token}"
    observe(None)
    drive.files().list().execute()
    assert len(seen) == 1


def test_observer_reads_a_small_body_and_the_request_still_lands(drive, observe):
    bodies = []
    observe(lambda event: bodies.append((event.body(), event.body(limit=4))))
    created = _upload(drive, b"hello observer", "seen.txt")
    body, short = bodies[0]
    assert b'"name": "seen.txt"' in body and b"hello observer" in body
    assert short == body  # read once, kept: a smaller limit later returns the same bytes
    observe(lambda event: bodies.append(event.body(limit=4)))
    _upload(drive, b"too long for the limit", "unseen.txt")
    assert bodies[-1] is None
    meta = drive.files().get(fileId=created["id"], fields="md5Checksum").execute()
    assert meta["md5Checksum"] == hashlib.md5(b"hello observer").hexdigest()


def test_drop_cuts_the_connection_and_the_request_never_happens(drive, observe, capfd):
    observe(lambda event: DROP if event.method == "POST" else None)
    with pytest.raises(TRANSPORT_ERRORS):
        _upload(drive, os.urandom(1000), "dropped.bin")
    observe(None)
    assert fast_backoff(drive.files().list()).execute(num_retries=2)["files"] == []
    assert "Traceback" not in capfd.readouterr().err


def test_a_callable_answer_hears_the_status_once_answered(drive, observe):
    statuses = []
    observe(lambda event: statuses.append)
    drive.files().list().execute()
    with pytest.raises(HttpError):
        drive.files().get(fileId="no-such-file").execute()
    assert _eventually(lambda: len(statuses) == 2)
    assert [status.split()[0] for status in statuses] == ["200", "404"]


def test_a_held_request_is_served_after_its_client_is_gone(emulator, drive, observe):
    arrived, release, statuses = threading.Event(), threading.Event(), []

    def hold_uploads(event):
        if event.method != "POST":
            return None
        event.body()  # the whole request is here before its client goes away
        arrived.set()
        release.wait(10)
        return statuses.append

    observe(hold_uploads)
    url = urlsplit(emulator.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request(
        "POST",
        "/upload/drive/v3/files?uploadType=media",
        body=b"landed late",
        headers={"Authorization": f"Bearer {emulator.token}"},
    )
    assert arrived.wait(10)
    assert drive.files().list().execute()["files"] == []  # held; other requests go on
    conn.close()  # the client dies before any answer
    release.set()
    assert _eventually(lambda: statuses == ["200 OK"])
    files = drive.files().list(fields="files(md5Checksum)").execute()["files"]
    assert files == [{"md5Checksum": hashlib.md5(b"landed late").hexdigest()}]


# -- acceptance: a big resumable upload through faults -------------------------------------------


class BytesChunks(MediaIoBaseUpload):
    """A resumable upload that gives the client each chunk as bytes, so a retry re-sends it."""

    def has_stream(self) -> bool:
        return False


class _PatternFile(io.RawIOBase):
    """A seekable read-only stream of ``size`` pseudo-random bytes, made on the fly."""

    def __init__(self, size: int, block: int = 1 << 20) -> None:
        self._size, self._pos, self._block = size, 0, block
        self._blocks = [hashlib.sha512(bytes([i])).digest() * (block // 64) for i in range(7)]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buf) -> int:
        n = min(len(buf), self._size - self._pos)
        done = 0
        while done < n:
            index, offset = divmod(self._pos + done, self._block)
            piece = self._blocks[index % 7][offset : offset + n - done]
            buf[done : done + len(piece)] = piece
            done += len(piece)
        self._pos += n
        return n

    def md5(self) -> str:
        digest = hashlib.md5()
        self.seek(0)
        while chunk := self.read(8 << 20):
            digest.update(chunk)
        self.seek(0)
        return digest.hexdigest()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_300mb_upload_survives_5xx_and_cuts(emulator, drive):
    """Acceptance: 10 % of requests fail with 5xx and 1 % are cut mid-body; md5 still matches.

    What the client library does by itself (google-api-python-client 2.x):
    - ``next_chunk(num_retries=...)`` retries a 5xx chunk PUT, but re-sends the chunk only if
      the upload hands out chunks as bytes: a stream-backed upload (``MediaIoBaseUpload``,
      ``MediaFileUpload``, ``MediaInMemoryUpload``) re-sends an exhausted stream slice, an
      empty body under the chunk's Content-Length, and hangs until the socket times out.
      Hence ``BytesChunks`` below (``has_stream() -> False``).
    - A transport error during a chunk PUT is not retried: it leaves the request in its
      error state and propagates. Calling ``next_chunk`` again sends the status query
      (``Content-Range: bytes */N``) and resumes from the server's ``Range``; that status
      query itself is sent once, without retries, so a 5xx there surfaces as ``HttpError``.
    """
    size = 300 * 10**6
    source = _PatternFile(size)
    expected = source.md5()
    emulator.settings.update({"error_rate": 0.10, "cut_rate": 0.01, "seed": 2089})
    media = BytesChunks(
        source, mimetype="application/octet-stream", chunksize=8 << 20, resumable=True
    )
    request = fast_backoff(drive.files().create(body={"name": "big.bin"}, media_body=media))
    response, transport_errors, http_errors = None, 0, 0
    while response is None:
        try:
            _, response = request.next_chunk(num_retries=10)
        except TRANSPORT_ERRORS:
            transport_errors += 1
        except HttpError as e:
            if e.resp.status < 500:
                raise
            http_errors += 1
        assert transport_errors + http_errors < 200
    emulator.settings.faults_off()
    check = drive.files().get(fileId=response["id"], fields="size,md5Checksum")
    meta = fast_backoff(check).execute(num_retries=2)
    assert meta == {"size": str(size), "md5Checksum": expected}
    stats = control(emulator, "GET", "stats")
    assert stats["error_500"] + stats["error_503"] > 0
    assert stats["cut_request"] + stats["cut_response"] > 0


# -- partial failures: the work is done, the answer is an error --------------------------------


def test_error_after_does_the_work_then_answers_5xx(emulator, drive):
    """A create that exists although the client saw a 5xx, as on Drive, where an error answer
    does not prove the write did not happen (the generateIds guide: "retry ... with the same
    ID" exists for exactly this)."""
    emulator.settings.update({"error_after_rate": 1.0})
    status, _, data = raw(
        emulator, "POST", "/drive/v3/files", {"name": "ghost"}, token=emulator.token
    )
    assert status in (500, 503) and b"backendError" in data
    # A plain retry now makes a second file: only a create with a fixed id converges.
    status, _, _ = raw(emulator, "POST", "/drive/v3/files", {"name": "ghost"}, token=emulator.token)
    assert status in (500, 503)
    emulator.settings.faults_off()
    listed = drive.files().list(q="name = 'ghost'", fields="files(id)").execute()["files"]
    assert len(listed) == 2
    assert control(emulator, "GET", "stats")["error_after"] == 2


def test_error_after_stores_a_resumable_chunk_whose_answer_was_lost(emulator, drive):
    """The chunk is kept although the 503 says otherwise; the status query (``bytes */N``,
    Drive's "Resume an interrupted upload") is how a client learns it."""
    data = os.urandom(512 * 1024)
    status, hdrs, _ = raw(
        emulator,
        "POST",
        "/upload/drive/v3/files?uploadType=resumable",
        {"name": "r.bin"},
        token=emulator.token,
    )
    session = hdrs["Location"]
    emulator.settings.update({"error_after_rate": 1.0})
    status, _, _ = raw(
        emulator,
        "PUT",
        session,
        data[: 256 * 1024],
        token=emulator.token,
        headers={"Content-Range": f"bytes 0-{256 * 1024 - 1}/{len(data)}"},
    )
    assert status in (500, 503)
    emulator.settings.faults_off()
    status, hdrs, _ = raw(
        emulator, "PUT", session, b"", token=emulator.token,
        headers={"Content-Range": f"bytes */{len(data)}"},
    )  # fmt: skip
    assert status == 308 and hdrs["Range"] == f"bytes=0-{256 * 1024 - 1}"


def test_error_reasons_carry_drive_s_domains(emulator, drive):
    """Drive's "Resolve errors" guide: rate limits are ``usageLimits`` errors
    (``rateLimitExceeded`` for 429 and 403, ``userRateLimitExceeded``); a full Drive is
    ``storageQuotaExceeded``. (Its domain is not shown in the guide: ``global`` here.)"""

    def detail(fn):
        with pytest.raises(HttpError) as e:
            fn()
        return e.value.resp.status, json.loads(e.value.content)["error"]["errors"][0]

    emulator.settings.update({"rate_limit_429": 1.0, "retry_after": 0})
    status, d = detail(lambda: drive.files().list().execute())
    assert (status, d["reason"], d["domain"]) == (429, "rateLimitExceeded", "usageLimits")
    emulator.settings.update({"rate_limit_429": 0.0, "rate_limit_403": 1.0})
    status, d = detail(lambda: drive.files().list().execute())
    assert (status, d["reason"], d["domain"]) == (403, "userRateLimitExceeded", "usageLimits")
    emulator.settings.faults_off()
    emulator.settings.update({"quota_bytes": 10})
    media = MediaInMemoryUpload(b"x" * 100, mimetype="application/octet-stream")
    status, d = detail(
        lambda: drive.files().create(body={"name": "big"}, media_body=media).execute()
    )
    assert (status, d["reason"], d["domain"]) == (403, "storageQuotaExceeded", "global")
