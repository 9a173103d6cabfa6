"""``%drive_sync`` with a ``gs://`` side, in a real IPython shell against the GCS emulator."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.gcs.test_pull import put, read_tree


@pytest.fixture
def sync_shell(shell, tmp_path, monkeypatch, gcs_emulator):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return shell


def test_pull_and_push_through_the_magic(sync_shell, bucket, tmp_path):
    put(bucket, "data/a.txt", b"A")
    put(bucket, "data/sub/b.txt", b"BB")
    result = sync_shell.run_cell('%drive_sync pull gs://data-bucket/data "local copy"')
    assert result.error_in_exec is None
    assert read_tree(tmp_path / "local copy") == {"a.txt": b"A", "sub/b.txt": b"BB"}

    (tmp_path / "local copy" / "c.txt").write_bytes(b"CCC")
    result = sync_shell.run_cell('%drive_sync push "local copy" gs://data-bucket/copy')
    assert result.error_in_exec is None
    names = sorted(blob.name for blob in bucket.list_blobs(prefix="copy/"))
    assert names == ["copy/a.txt", "copy/c.txt", "copy/sub/b.txt"]


def test_drive_only_options_are_refused_for_gs(sync_shell, bucket, tmp_path, capsys):
    (tmp_path / "src").mkdir()
    result = sync_shell.run_cell("%drive_sync push src gs://data-bucket/x --delete")
    assert result.error_in_exec is not None
    assert "--delete works with Drive paths only" in str(result.error_in_exec)
    assert list(bucket.list_blobs()) == []


def test_max_size_limits_a_gs_extraction(sync_shell, bucket, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.bin", b"\0" * 200_000)
    put(bucket, "ds.zip", buf.getvalue())
    result = sync_shell.run_cell(
        "%drive_sync pull gs://data-bucket/ds.zip out --extract --max-size 100K"
    )
    assert result.error_in_exec is not None
    assert "refused for safety" in str(result.error_in_exec)
    assert not (tmp_path / "out" / "big.bin").exists()

    result = sync_shell.run_cell(
        "%drive_sync pull gs://data-bucket/ds.zip out --extract --max-size 1M"
    )
    assert result.error_in_exec is None
    assert (tmp_path / "out" / "big.bin").stat().st_size == 200_000
