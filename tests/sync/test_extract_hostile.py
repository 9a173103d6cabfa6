"""Hostile archives: links decided on the real filesystem, planted links, bombs, limits.

What is refused follows Python 3.12's tarfile ``data`` filter
(https://docs.python.org/3.12/library/tarfile.html#tarfile.data_filter): absolute names,
destinations and link targets that resolve outside the target, special files; setuid bits and
group/other write are dropped.
"""

from __future__ import annotations

import os
import resource
import stat
from pathlib import Path

import pytest

from colab_magics.sync import ArchiveError, SyncAborted, extract
from tests.sync.archives import Entry, links_out, make_tar, make_zip, snapshot, zip_of_zeros

FORMATS = ["zip", "tar.gz"]


def build(fmt: str, entries: list[Entry]) -> bytes:
    return make_zip(entries) if fmt == "zip" else make_tar(entries)


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """A parent folder holding a victim file and a secret, with the target ``box/out`` in it."""
    (tmp_path / "victim").write_bytes(b"victim: untouched")
    (tmp_path / "secret.txt").write_bytes(b"secret")
    return tmp_path


def refused(box: Path, fmt: str, entries: list[Entry], entry: str | None, **kw) -> str:
    """Extract into box/out; it must be refused for safety naming ``entry``, and leave the
    parent as it was, target included (nothing of the run kept). Returns the message."""
    archive = box / f"a.{fmt}"
    archive.write_bytes(build(fmt, entries))
    before = snapshot(box)
    with pytest.raises(ArchiveError, match="refused for safety") as info:
        extract(archive, box / "out", **kw)
    message = str(info.value)
    assert entry is None or repr(entry) in message
    assert "damaged" not in message and "\n" not in message
    after = snapshot(box)
    if "out" not in before:
        assert after.pop("out")[0] == "dir"
    assert after == before
    return message


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_link_through_a_link_to_dot_is_resolved_on_disk(box, fmt):
    """``b -> a/..`` reads as ``.`` in text, but ``a`` is a link to ``.`` on disk."""
    entries = [("symlink", "a", "."), ("symlink", "b", "a/.."), ("file", "b/x.txt", b"x")]
    refused(box, fmt, entries, "b")
    assert not (box / "x.txt").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_planted_temporary_name_is_never_written_through(box, fmt):
    entries = [
        ("symlink", "a", "."),
        ("symlink", "m.bin.part", "a/../victim"),
        ("file", "m.bin", b"overwritten"),
    ]
    refused(box, fmt, entries, "m.bin.part")
    assert (box / "victim").read_bytes() == b"victim: untouched"


@pytest.mark.parametrize("fmt", FORMATS)
def test_temporary_names_are_none_an_entry_can_have(tmp_path, fmt):
    """A link inside at the name an old writer used as temporary stays a link; the file gets
    its own bytes and the link's target is not written."""
    entries = [
        ("file", "sub/real", b"original"),
        ("symlink", "m.bin.part", "sub/real"),
        ("file", "m.bin", b"new"),
    ]
    archive = tmp_path / f"a.{fmt}"
    archive.write_bytes(build(fmt, entries))
    extract(archive, tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "sub/real").read_bytes() == b"original"
    assert (out / "m.bin").read_bytes() == b"new" and not (out / "m.bin").is_symlink()
    assert os.readlink(out / "m.bin.part") == "sub/real"
    assert sorted(os.listdir(out)) == ["m.bin", "m.bin.part", "sub"]  # no staging left


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_link_already_in_the_target_is_replaced_not_followed(box, fmt):
    out = box / "out"
    out.mkdir()
    os.symlink(box / "victim", out / "m.bin")
    os.symlink(box / "victim", out / "m.bin.part")
    archive = box / f"a.{fmt}"
    archive.write_bytes(build(fmt, [("file", "m.bin", b"new")]))
    extract(archive, out)
    assert (box / "victim").read_bytes() == b"victim: untouched"
    assert (out / "m.bin").read_bytes() == b"new" and not (out / "m.bin").is_symlink()


def test_a_hard_link_to_a_symlink_pointing_out_is_refused(box):
    entries = [
        ("symlink", "a", "."),
        ("symlink", "s", "a/../secret.txt"),
        ("hardlink", "h", "s"),
    ]
    refused(box, "tar.gz", entries, "s")


def test_a_hard_link_through_a_link_already_there_is_refused(box):
    out = box / "out"
    out.mkdir()
    os.symlink(box / "secret.txt", out / "s")
    message = refused(box, "tar.gz", [("file", "ok.txt", b"ok"), ("hardlink", "h", "s")], "h")
    assert "leads outside" in message
    assert os.readlink(out / "s") == str(box / "secret.txt")  # not this run's: kept
    assert (box / "secret.txt").stat().st_nlink == 1


def test_a_hard_link_inside_links_the_file_not_the_symlink(tmp_path):
    entries = [("file", "real.txt", b"data"), ("symlink", "s", "real.txt"), ("hardlink", "h", "s")]
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(make_tar(entries))
    extract(archive, tmp_path / "out")
    h = tmp_path / "out/h"
    assert not h.is_symlink() and h.read_bytes() == b"data"
    assert os.path.samefile(h, tmp_path / "out/real.txt")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_link_made_to_point_out_by_a_later_entry_is_removed(box, fmt):
    """``l -> x/..`` is inside while ``x`` does not exist; ``x -> .`` then makes it the parent."""
    entries = [("file", "keep.txt", b"k"), ("symlink", "l", "x/.."), ("symlink", "x", ".")]
    refused(box, fmt, entries, "l")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_refusal_mid_way_takes_back_what_this_run_wrote(box, fmt):
    entries = [
        ("file", "ok/a.txt", b"fine"),
        ("symlink", "ok/in", "a.txt"),
        ("file", "../escape.txt", b"x"),
    ]
    refused(box, fmt, entries, "../escape.txt")
    assert not (box / "escape.txt").exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_dot_dot_that_stays_inside_is_extracted_like_the_data_filter(tmp_path, fmt):
    archive = tmp_path / f"a.{fmt}"
    archive.write_bytes(build(fmt, [("file", "a/../b.txt", b"b"), ("dir", "c/d/..", None)]))
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out/b.txt").read_bytes() == b"b" and (tmp_path / "out/c").is_dir()


def test_setuid_and_group_write_bits_are_dropped(tmp_path):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, mode in (("run.sh", 0o6777), ("data.txt", 0o2666)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = 1, mode
            tf.addfile(info, io.BytesIO(b"x"))
    (tmp_path / "m.tar").write_bytes(buf.getvalue())
    extract(tmp_path / "m.tar", tmp_path / "out")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "out/run.sh").stat().st_mode) == 0o755 & ~umask
    assert stat.S_IMODE((tmp_path / "out/data.txt").stat().st_mode) == 0o644 & ~umask


@pytest.mark.parametrize(
    "mode",
    [stat.S_IFIFO | 0o644, stat.S_IFBLK | 0o600, stat.S_IFSOCK | 0o600],
    ids=["fifo", "block", "socket"],
)
def test_special_files_are_refused_in_zip_as_in_tar(box, mode):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok.txt", b"fine")
        info = zipfile.ZipInfo("special")
        info.external_attr = mode << 16
        zf.writestr(info, b"")
    (box / "s.zip").write_bytes(buf.getvalue())
    with pytest.raises(ArchiveError, match="refused for safety.*'special'"):
        extract(box / "s.zip", box / "out")
    assert os.listdir(box / "out") == []


def test_a_symlink_entry_inflating_to_a_gigabyte_is_never_read_whole(box):
    archive = box / "bomb.zip"
    archive.write_bytes(zip_of_zeros("link", 1 << 30, stat.S_IFLNK | 0o777))
    assert archive.stat().st_size < 2_000_000
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(ArchiveError, match="refused for safety.*'link'.*4096 bytes"):
        extract(archive, box / "out")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 100_000


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_high_compression_ratio_is_refused_naming_the_numbers(box, fmt):
    entries: list[Entry] = [("file", "a.txt", b"fine"), ("file", "zeros.bin", bytes(3_000_000))]
    message = refused(box, fmt, entries, None if fmt == "zip" else "zeros.bin", max_size=None)
    assert "3.0 MB" in message and "200x" in message and "max_size" in message


def test_a_tar_bomb_stops_before_it_fills_the_disk(box):
    """Several members under the ratio one by one, over it together: refused at the member
    that passes it, and what was written before is removed."""
    entries: list[Entry] = [("file", f"z{i}.bin", bytes(1_000_000)) for i in range(20)]
    message = refused(box, "tar.gz", entries, None, max_size=None)
    assert "more than 5.0 MB by entry 'z4.bin'" in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_max_size_raises_the_ratio_limit_and_lowers_it(tmp_path, fmt):
    archive = tmp_path / f"a.{fmt}"
    archive.write_bytes(build(fmt, [("file", "zeros.bin", bytes(3_000_000))]))
    report = extract(archive, tmp_path / "out", max_size=3_000_000)
    assert report.extracted == 1 and (tmp_path / "out/zeros.bin").stat().st_size == 3_000_000
    with pytest.raises(ArchiveError, match="refused for safety.*over the limit of 2.0 MB"):
        extract(archive, tmp_path / "other", max_size=2_000_000)


def _tar_claiming(size: int) -> bytes:
    """An uncompressed tar whose second member declares ``size`` bytes (and holds few)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        small = tarfile.TarInfo("small.txt")
        small.size = 5
        tf.addfile(small, io.BytesIO(b"small"))
        big = tarfile.TarInfo("huge.bin")
        big.size = size
        tf.addfile(big)  # header only: the check must come before reading any of it
    return buf.getvalue()


def test_a_tar_that_does_not_fit_on_the_disk_is_stopped_before_writing(box):
    archive = box / "big.tar"
    archive.write_bytes(_tar_claiming(1 << 50))
    out = box / "out"
    with pytest.raises(SyncAborted, match="'huge.bin'.*would not fit.*1125.9 TB"):
        extract(archive, out, max_size=1 << 51)
    assert os.listdir(out) == []  # small.txt was taken back


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_link_left_points_out_after_any_refusal(box, fmt):
    entries = [
        ("symlink", "up", "x/.."),
        ("symlink", "x", "."),
        ("symlink", "deep", "x/x/x/.."),
        ("file", "deep/f", b"f"),
    ]
    archive = box / f"a.{fmt}"
    archive.write_bytes(build(fmt, entries))
    with pytest.raises(ArchiveError, match="refused for safety"):
        extract(archive, box / "out")
    assert links_out(box / "out") == [] and not (box / "f").exists()


def test_a_staging_folder_left_by_a_killed_run_is_removed_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    stale = out / ".colab_magics-extract-0123456789abcdef"
    stale.mkdir(parents=True)
    (stale / "7").write_bytes(b"half a file")
    (out / ".colab_magics-extract-mine").mkdir()  # not a name this package makes: kept
    archive = tmp_path / "a.zip"
    archive.write_bytes(make_zip([("file", "a.txt", b"a")]))
    extract(archive, out)
    assert sorted(os.listdir(out)) == [".colab_magics-extract-mine", "a.txt"]
