"""pull: round trips, skipping what is already here, resuming after a kill, bad input."""

from __future__ import annotations

import os

import pytest

from colab_magics.drive.staging import Staging
from colab_magics.sync import SyncAborted, SyncError, pull, push
from tests.sync.conftest import (
    TREE,
    UNIT,
    KillAfter,
    drive_tree,
    make_client,
    make_tree,
    read_tree,
)


def test_round_trip_keeps_every_file_and_folder(client, tmp_path, cache_dir):
    src = make_tree(tmp_path / "src")
    push(src, "data", client=client, cache_dir=cache_dir)
    report = pull("data", tmp_path / "back", client=client, cache_dir=cache_dir)
    assert report.ok and report.downloaded == len(TREE)
    assert report.bytes == sum(len(v) for v in TREE.values())
    assert read_tree(tmp_path / "back") == read_tree(src)  # empty folder "void" included
    again = pull("data", tmp_path / "back", client=client, cache_dir=cache_dir)
    assert again.downloaded == 0 and again.skipped == len(TREE) and again.hashed == 0


def test_local_copy_that_differs_is_replaced(client, tmp_path, cache_dir):
    push(make_tree(tmp_path / "src"), "data", client=client, cache_dir=cache_dir)
    back = make_tree(tmp_path / "back", {"a.txt": b"ALPHA", "sub/b.txt": b"beta" * 100}, ())
    report = pull("data", back, client=client, cache_dir=cache_dir)
    assert report.skipped == 1 and report.downloaded == len(TREE) - 1
    assert (back / "a.txt").read_bytes() == b"alpha"


def test_killed_pull_resumes_and_leaves_no_partial_files(client, tmp_path, cache_dir):
    files = {f"f{i:03}.bin": os.urandom(1000 + i) for i in range(40)}
    push(make_tree(tmp_path / "src", files, ()), "many", client=client, cache_dir=cache_dir)
    back = tmp_path / "back"
    with pytest.raises(KeyboardInterrupt):
        pull("many", back, client=client, jobs=4, progress=KillAfter(10), cache_dir=cache_dir)
    present = read_tree(back)[0]
    assert 10 <= len(present) <= 10 + 4  # the kill stops queued files; running ones end
    assert all(files[name] == data for name, data in present.items())  # only verified files

    before = client.requests
    report = pull("many", back, client=client, jobs=4, cache_dir=cache_dir)
    assert report.ok and report.skipped == len(present)
    assert report.downloaded == len(files) - len(present)
    assert read_tree(back)[0] == files
    assert client.requests - before < 2 * len(files)  # the skipped ones cost no requests


def test_pull_killed_mid_file_leaves_no_part(client, emulator, tmp_path, cache_dir):
    big = os.urandom(3 * 256 * 1024 + 5)

    class KillMidway:
        def update(self, **fields) -> None:
            if fields.get("bytes_total") and not fields.get("bytes_done"):
                # Its size is known, its bytes not yet asked for: from now on every answer is
                # cut half way, so the file arrives over several ranged requests.
                emulator.settings.update({"cut_rate": 1.0})
            if 0 < fields.get("bytes_done", 0) < len(big):
                raise KeyboardInterrupt

    client.upload(big, "big.bin")
    out = tmp_path / "out"
    out.mkdir()
    emulator.settings.update({"latency": 0.06})  # byte updates reach the sink every 0.1 s
    with pytest.raises(KeyboardInterrupt):
        pull("big.bin", out / "big.bin", client=client, progress=KillMidway(), cache_dir=cache_dir)
    assert os.listdir(out) == []
    emulator.settings.faults_off()
    pull("big.bin", out / "big.bin", client=client, cache_dir=cache_dir)
    assert (out / "big.bin").read_bytes() == big


def test_single_file_pull_to_path_and_into_folder(client, tmp_path, cache_dir):
    client.upload(b"weights", "ck/model.pt")
    pull("ck/model.pt", tmp_path / "m.pt", client=client, cache_dir=cache_dir)
    assert (tmp_path / "m.pt").read_bytes() == b"weights"
    (tmp_path / "dir").mkdir()
    pull("ck/model.pt", tmp_path / "dir", client=client, cache_dir=cache_dir)
    assert (tmp_path / "dir/model.pt").read_bytes() == b"weights"


def test_duplicates_on_drive_pull_the_oldest_and_are_reported(client, tmp_path, cache_dir):
    first = client.upload(b"old", "d/x.txt")
    second = client.upload(b"newer", "d/x.txt", replace=False)
    report = pull("d", tmp_path / "out", client=client, cache_dir=cache_dir)
    assert (tmp_path / "out/x.txt").read_bytes() == b"old"
    assert report.duplicates == {"x.txt": [first.file.id, second.file.id]}


def test_missing_drive_path_and_file_where_folder_expected(client, tmp_path, cache_dir):
    with pytest.raises(SyncError, match="drive:no/such does not exist"):
        pull("no/such", tmp_path / "o", client=client, cache_dir=cache_dir)
    client.upload(b"x", "d/f.txt")
    (tmp_path / "afile").write_bytes(b"")
    with pytest.raises(SyncError, match="is a local file"):
        pull("d", tmp_path / "afile", client=client, cache_dir=cache_dir)


def test_disk_full_stops_cleanly(client, tmp_path, cache_dir, monkeypatch):
    client.upload(os.urandom(100_000), "d/big.bin")
    out = tmp_path / "out"
    out.mkdir()
    real_create = Staging.create

    def onto_a_full_device(self):  # the temporary file's writes meet a full disk
        path, out_file = real_create(self)
        out_file.close()
        return path, open("/dev/full", "wb")  # the caller closes it

    monkeypatch.setattr(Staging, "create", onto_a_full_device)
    with pytest.raises(SyncAborted, match="local disk is full") as info:
        pull("d", out, client=client, cache_dir=cache_dir)
    assert "big.bin" in info.value.report.errors
    assert os.listdir(out) == []  # neither the final name nor a temporary is left


def test_unreachable_server_is_one_clear_error(emulator, tmp_path, cache_dir):
    from colab_magics.drive.retry import RetryPolicy

    c = make_client(emulator, policy=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02))
    c.upload(b"x", "d/f.txt")
    emulator.stop()
    with pytest.raises(SyncAborted, match="could not be reached") as info:
        pull("d", tmp_path / "o", client=c, cache_dir=cache_dir)
    assert "emulator is running" in str(info.value)
    assert not (tmp_path / "o" / "f.txt").exists()
    c.close()


@pytest.mark.parametrize("bad_name", ["..", "../evil.txt", "a/b.txt"])
def test_drive_names_that_cannot_be_local_names_are_refused(client, tmp_path, cache_dir, bad_name):
    up = client.upload(b"x", "d/ok.txt")
    bad = client.upload(b"evil", "d/tmp.txt")
    files = client.service.files()
    client.transport.execute(lambda: files.update(fileId=bad.file.id, body={"name": bad_name}))
    out = tmp_path / "box" / "out"
    report = pull("d", out, client=client, cache_dir=cache_dir)
    assert (out / "ok.txt").read_bytes() == b"x" and up.file.name == "ok.txt"
    assert list(report.errors) == [bad_name] and "cannot be a local file name" in str(report.errors)
    assert sorted(p.name for p in (tmp_path / "box").rglob("*")) == ["ok.txt", "out"]


def test_pull_that_cannot_fit_is_refused_before_downloading(
    client, tmp_path, cache_dir, monkeypatch
):
    import shutil

    client.upload(os.urandom(1000), "d/x.bin")
    real = shutil.disk_usage
    monkeypatch.setattr(
        "colab_magics.sync.local.shutil.disk_usage", lambda p: real(p)._replace(free=10_000_000)
    )
    with pytest.raises(SyncAborted, match="would not fit.*nothing was downloaded"):
        pull("d", tmp_path / "out", client=client, cache_dir=cache_dir)
    assert not (tmp_path / "out/x.bin").exists()


def test_local_file_in_the_way_of_a_folder_fails_only_that_folder(client, tmp_path, cache_dir):
    client.upload(b"1", "d/sub/x.txt")
    client.upload(b"2", "d/y.txt")
    out = make_tree(tmp_path / "out", {"sub": b"a file, not a folder"}, ())
    report = pull("d", out, client=client, cache_dir=cache_dir)
    assert list(report.errors) == ["sub"] and "in the way" in report.errors["sub"]
    assert (out / "y.txt").read_bytes() == b"2" and (out / "sub").read_bytes().startswith(b"a")


def test_pull_cut_off_by_the_server_going_away_resumes_when_it_is_back(tmp_path, cache_dir):
    from colab_magics.drive.retry import RetryPolicy
    from colab_magics.emulator import start_emulator

    handle = start_emulator(tmp_path / "drive")
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)
    c = make_client(handle, policy=policy)
    files = {f"f{i:03}.bin": os.urandom(2000) for i in range(40)}
    push(make_tree(tmp_path / "src", files, ()), "many", client=c, cache_dir=cache_dir)

    class StopServerAfter:
        def update(self, **fields) -> None:
            if fields.get("files_done", 0) >= 10:
                handle.stop()

    back = tmp_path / "back"
    try:
        # One worker: nothing else can slip through while the server shuts down.
        with pytest.raises(SyncAborted, match="could not be reached"):
            pull("many", back, client=c, jobs=1, progress=StopServerAfter(), cache_dir=cache_dir)
        present = read_tree(back)[0]
        assert len(present) == 10
        assert all(files[k] == v for k, v in present.items())
        handle = start_emulator(tmp_path / "drive", port=handle.port, token=handle.token)
        c.close()
        c = make_client(handle)  # fresh connections, as after a reconnect
        report = pull("many", back, client=c, jobs=2, cache_dir=cache_dir)
        assert report.ok and report.skipped == len(present)
        assert read_tree(back)[0] == files
    finally:
        handle.stop()
        c.close()


def test_folder_wins_over_a_file_of_the_same_name(emulator, tmp_path, cache_dir):
    setup = make_client(emulator)
    setup.upload(b"a file called d", "d")  # older
    setup.upload(b"inside", "d/x.txt")  # makes a folder d beside the file
    setup.close()
    c = make_client(emulator)  # a client with no cache: it sees both
    try:
        with pytest.warns(UserWarning, match="named 'd'"):
            report = pull("d", tmp_path / "out", client=c, cache_dir=cache_dir)
        assert read_tree(tmp_path / "out")[0] == {"x.txt": b"inside"}
        src = make_tree(tmp_path / "src", {"y.txt": b"new"}, ())
        assert push(src, "d", client=c, cache_dir=cache_dir).uploaded == 1
        assert c.read_bytes("d/y.txt") == b"new" and report.ok
    finally:
        c.close()


def test_drive_names_a_temporary_could_have_pull_correctly(emulator, client, tmp_path, cache_dir):
    """Drive allows any name in a folder, ``x.part`` beside ``x`` included (DESIGN.md, Drive's
    names), so no local temporary may be derived from the name being written: ``x`` used to be
    staged as ``x.part`` and, pulled in parallel with the real ``x.part``, ended up holding its
    bytes. Case twins are separate files too."""
    big = os.urandom(4 * UNIT + 7)  # several ranged requests: still running when others end
    files = {
        "x": big,
        "x.part": b"the real x.part",
        "X": b"upper-case X",
        "x.part.part": b"x.part.part",
        "x.tmp": b"x.tmp",
        ".colab_magics-staging-0123456789abcdef": b"a Drive file named like a staging folder",
        "sub/y": big[::-1],
        "sub/y.part": b"sub/y.part",
        "sub/.lock": b"a lock file's name",
    }
    for rel, data in files.items():
        client.upload(data, f"d/{rel}", replace=False)
    emulator.settings.update({"latency": 0.02})
    out = tmp_path / "out"
    report = pull("d", out, client=client, jobs=8, cache_dir=cache_dir)
    assert report.ok and report.downloaded == len(files) and report.duplicates == {}
    assert read_tree(out) == (files, {"sub"})  # nothing else: every temporary is gone
    again = pull("d", out, client=client, jobs=8, cache_dir=cache_dir)
    assert again.ok and again.skipped == len(files) and read_tree(out) == (files, {"sub"})


_PULL_SCRIPT = """
import sys
from colab_magics.drive.client import DriveClient
from colab_magics.drive.service import token_credentials
from colab_magics.sync import pull

url, token, out, cache = sys.argv[1:]
client = DriveClient(url, token_credentials(token), rate=None, download_chunk_size=256 * 1024)
pull("many", out, client=client, jobs=2, cache_dir=cache)
"""


def test_pull_killed_by_sigkill_resumes_and_leaves_no_temporaries(
    emulator, client, tmp_path, cache_dir
):
    """A runtime that dies runs no cleanup: the next pull into the same folder removes what the
    killed one left, skips the files it finished, and a push of the folder meanwhile never
    sends the temporaries to Drive."""
    import signal
    import subprocess
    import sys
    import time

    files = {f"f{i:02}.bin": os.urandom(3 * UNIT + i) for i in range(12)}
    push(make_tree(tmp_path / "src", files, ()), "many", client=client, cache_dir=cache_dir)
    emulator.settings.update({"latency": 0.05})
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [emulator.url, emulator.token, str(out), str(tmp_path / "cache2")]
    proc = subprocess.Popen([sys.executable, "-c", _PULL_SCRIPT, *args], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if sum((out / n).exists() for n in files) >= 3:  # the others are in flight
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the pull ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = list(out.glob(".colab_magics-staging-*"))
    assert len(left) == 1  # the killed pull's temporaries are still there
    finished = {n: (out / n).read_bytes() for n in files if (out / n).exists()}
    assert all(files[n] == data for n, data in finished.items())  # only verified files

    emulator.settings.update({"latency": 0.0})
    sent = push(out, "pushed", client=client, cache_dir=cache_dir)
    assert sent.ok and set(drive_tree(client, "pushed")) == set(finished)

    report = pull("many", out, client=client, jobs=4, cache_dir=tmp_path / "cache2")
    assert report.ok and report.skipped == len(finished)
    assert report.downloaded == len(files) - len(finished)
    assert read_tree(out) == (files, set())  # the staging folder is gone
