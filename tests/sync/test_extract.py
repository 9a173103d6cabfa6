"""pull(extract=True): zip and tar.gz land locally, resume after a kill, unsafe entries refused."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colab_magics.sync import ArchiveError, SyncError, extract, pull
from tests.sync.conftest import KillAfter

FILES = {f"imgs/{i:03}.png": os.urandom(500 + i) for i in range(30)}
FILES["readme.txt"] = "résumé ✓".encode()
FILES["imgs/empty"] = b""


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tgz(files: dict[str, bytes], extra=()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info)
    return buf.getvalue()


def tree(root) -> dict[str, bytes]:
    out = {}
    for folder, _, names in os.walk(root):
        for n in names:
            p = os.path.join(folder, n)
            out[os.path.relpath(p, root)] = Path(p).read_bytes()
    return out


@pytest.mark.parametrize("name,maker", [("data.zip", make_zip), ("data.tar.gz", make_tgz)])
def test_extract_is_resumed_after_a_kill(client, tmp_path, cache_dir, name, maker):
    client.upload(maker(FILES), f"datasets/{name}")
    out = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        pull(
            f"datasets/{name}",
            out,
            client=client,
            extract=True,
            progress=KillAfter(12),
            cache_dir=cache_dir,
        )
    partial = tree(out)
    assert 10 <= len(partial) < len(FILES)
    assert all(FILES[k] == v for k, v in partial.items())  # no half-written entry under a name
    before = client.requests

    report = pull(f"datasets/{name}", out, client=client, extract=True, cache_dir=cache_dir)
    assert tree(out) == FILES
    assert report.downloaded == 0  # the fetched archive was kept for the re-run
    assert report.skipped == len(partial) and report.extracted == len(FILES) - len(partial)
    assert client.requests - before <= 4
    assert os.listdir(cache_dir / "archives") == []  # removed once extracted


def test_entry_that_was_cut_short_is_rewritten(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(make_zip(FILES))
    out = tmp_path / "out"
    extract(archive, out)
    (out / "imgs/005.png").write_bytes(b"torn")  # a torn write from some other tool
    with open(out / "imgs/006.png", "r+b") as f:  # same size, other bytes: the CRC differs
        f.write(b"XX")
    report = extract(archive, out)
    assert report.extracted == 2 and report.skipped == len(FILES) - 2
    assert tree(out) == FILES


def _zip_with(name: str, data: bytes = b"x", mode: int | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok.txt", b"fine")
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        zf.writestr(info, data)
    return buf.getvalue()


def _tar_member(name: str, type_: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = type_, linkname
    return info


@pytest.mark.parametrize(
    "archive,entry",
    [
        (lambda: _zip_with("../evil.txt"), "../evil.txt"),
        (lambda: _zip_with("a/../../evil.txt"), "a/../../evil.txt"),
        (lambda: _zip_with("/tmp/evil.txt"), "/tmp/evil.txt"),
        (lambda: _zip_with("link", b"../../outside", stat.S_IFLNK | 0o777), "link"),
        (lambda: _zip_with("dev", b"", stat.S_IFCHR | 0o600), "dev"),
        (lambda: make_tgz({"../evil.txt": b"x"}), "../evil.txt"),
        (lambda: make_tgz({"/abs.txt": b"x"}), "/abs.txt"),
        (lambda: make_tgz({}, [_tar_member("ln", tarfile.SYMTYPE, "/etc/passwd")]), "ln"),
        (lambda: make_tgz({}, [_tar_member("up", tarfile.SYMTYPE, "../../x")]), "up"),
        (lambda: make_tgz({}, [_tar_member("hl", tarfile.LNKTYPE, "../outside.txt")]), "hl"),
        (lambda: make_tgz({}, [_tar_member("null", tarfile.CHRTYPE)]), "null"),
    ],
)
def test_unsafe_entries_are_refused_and_nothing_lands_outside(tmp_path, archive, entry):
    data = archive()
    path = tmp_path / ("bad.zip" if data[:2] == b"PK" else "bad.tar.gz")
    path.write_bytes(data)
    out = tmp_path / "box" / "out"
    with pytest.raises(ArchiveError, match="refused for safety. Refusing archive entry") as info:
        extract(path, out)
    assert repr(entry) in str(info.value)
    outside = {p.name for p in tmp_path.rglob("*")} - {"bad.zip", "bad.tar.gz", "box", "out"}
    assert outside == set()
    assert os.listdir(out) == []  # what was written before the refusal was taken back


def test_links_inside_the_target_are_kept(tmp_path):
    links = [
        _tar_member("sub/alias", tarfile.SYMTYPE, "../real.txt"),
        _tar_member("hard.txt", tarfile.LNKTYPE, "real.txt"),
    ]
    path = tmp_path / "ok.tar.gz"
    path.write_bytes(make_tgz({"real.txt": b"data", "sub/x": b"1"}, links))
    extract(path, tmp_path / "out")
    assert (tmp_path / "out/sub/alias").read_bytes() == b"data"
    assert os.readlink(tmp_path / "out/sub/alias") == "../real.txt"
    assert (tmp_path / "out/hard.txt").read_bytes() == b"data"


def test_a_link_planted_in_the_target_is_not_followed_out(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", out / "sub")
    path = tmp_path / "a.tar.gz"
    path.write_bytes(make_tgz({"sub/x.txt": b"x"}))
    with pytest.raises(ArchiveError, match="'sub/x.txt'.*link that leads outside"):
        extract(path, out)
    assert os.listdir(tmp_path / "elsewhere") == []


@pytest.mark.parametrize("name", ["broken.zip", "broken.tar.gz"])
def test_corrupt_archive_is_a_clear_error(client, tmp_path, cache_dir, name):
    good = make_zip(FILES) if name.endswith(".zip") else make_tgz(FILES)
    client.upload(good[: len(good) // 2], name)
    with pytest.raises(ArchiveError, match=f"'{name}' is damaged"):
        pull(name, tmp_path / "out", client=client, extract=True, cache_dir=cache_dir)
    leftovers = [p for p in (tmp_path / "out").rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


def test_extract_refuses_the_mount_and_non_archives(client, tmp_path, cache_dir):
    client.upload(make_zip(FILES), "d.zip")
    client.upload(b"plain", "notes.txt")
    client.mount_root = str(tmp_path / "mnt")
    with pytest.raises(SyncError, match="is on the Drive mount"):
        pull("d.zip", tmp_path / "mnt/data", client=client, extract=True, cache_dir=cache_dir)
    with pytest.raises(SyncError, match="not an archive"):
        pull("notes.txt", tmp_path / "o", client=client, extract=True, cache_dir=cache_dir)
    assert not (tmp_path / "mnt").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs: 16 pages, while each small file takes a page of its own."""
    disk = tmp_path / "small"
    disk.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_disk_full_during_extraction_stops_cleanly_and_resumes(
    client, tmp_path, cache_dir, small_disk, monkeypatch
):
    """The declared sizes fit, the blocks they take do not: ENOSPC half way through."""
    from colab_magics.sync import SyncAborted, local

    monkeypatch.setattr(local, "SPACE_MARGIN", 0)
    client.upload(make_zip(FILES), "d.zip")
    out = small_disk / "out"
    with pytest.raises(SyncAborted, match="local disk is full"):
        pull("d.zip", out, client=client, extract=True, cache_dir=cache_dir)
    partial = tree(out)
    assert 0 < len(partial) < len(FILES) and all(FILES[k] == v for k, v in partial.items())
    subprocess.run(["mount", "-o", "remount,size=1m", str(small_disk)], check=True)
    report = pull("d.zip", out, client=client, extract=True, cache_dir=cache_dir)
    assert tree(out) == FILES and report.downloaded == 0 and report.skipped == len(partial)


def _media_gets(emulator) -> list:
    seen: list = []
    emulator.faults.on_request(
        lambda event: seen.append(event) if event.query.get("alt") == ["media"] else None
    )
    return seen


@pytest.mark.parametrize("name,maker", [("data.zip", make_zip), ("data.tar.gz", make_tgz)])
def test_rerunning_a_finished_extraction_downloads_nothing(
    emulator, client, tmp_path, cache_dir, name, maker
):
    client.upload(maker(FILES), f"datasets/{name}")
    out = tmp_path / "data"
    first = pull(f"datasets/{name}", out, client=client, extract=True, cache_dir=cache_dir)
    assert first.downloaded == 1 and first.extracted == len(FILES)
    media = _media_gets(emulator)
    try:
        again = pull(f"datasets/{name}", out, client=client, extract=True, cache_dir=cache_dir)
        assert media == [] and again.downloaded == 0 and again.extracted == 0
        assert again.skipped == len(FILES)
        (out / "imgs/007.png").unlink()  # no longer all there: fetched and extracted again
        third = pull(f"datasets/{name}", out, client=client, extract=True, cache_dir=cache_dir)
        assert len(media) == 1 and third.downloaded == 1 and third.extracted == 1
    finally:
        emulator.faults.on_request(None)
    assert tree(out) == FILES


def test_a_changed_archive_on_drive_is_extracted_again(client, tmp_path, cache_dir):
    client.upload(make_zip({"a.txt": b"one"}), "d.zip")
    pull("d.zip", tmp_path / "o", client=client, extract=True, cache_dir=cache_dir)
    client.upload(make_zip({"a.txt": b"two"}), "d.zip")
    report = pull("d.zip", tmp_path / "o", client=client, extract=True, cache_dir=cache_dir)
    assert report.downloaded == 1 and (tmp_path / "o/a.txt").read_bytes() == b"two"


def test_pull_passes_max_size_to_the_extraction(client, tmp_path, cache_dir):
    client.upload(make_zip({"zeros.bin": bytes(3_000_000)}), "z.zip")
    with pytest.raises(ArchiveError, match="refused for safety.*max_size"):
        pull("z.zip", tmp_path / "o", client=client, extract=True, cache_dir=cache_dir)
    assert os.listdir(tmp_path / "o") == []
    report = pull(
        "z.zip", tmp_path / "o", client=client, extract=True, cache_dir=cache_dir, max_size=3 << 20
    )
    assert report.extracted == 1 and (tmp_path / "o/zeros.bin").stat().st_size == 3_000_000


SEGMENTS = ["..", ".", "a", "b", "", "/", "c.txt"]
entry_names = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=5).map("/".join)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.lists(entry_names, min_size=1, max_size=4), kind=st.sampled_from(["zip", "tgz"]))
def test_any_entry_name_lands_inside_or_is_refused(tmp_path_factory, names, kind):
    base = tmp_path_factory.mktemp("prop")
    out = base / "box" / "out"
    archive = base / f"p.{kind}"
    files = {name: f"entry {i}".encode() for i, name in enumerate(names) if name.strip("/.")}
    archive.write_bytes(make_zip(files) if kind == "zip" else make_tgz(files))
    try:
        extract(archive, out)
    except ArchiveError as exc:  # refused, or two entries clash: named, never a raw OSError
        assert any(repr(n) in str(exc) for n in files)
    written = [p for p in base.rglob("*") if not p.is_dir() and p != archive]
    assert all(out in p.parents for p in written)
    assert not [p for p in written if p.name.endswith(".part")]
