"""Transfers verified by the checksum of Drive's that this CPU computes fastest.

Drive's files resource has ``md5Checksum``, ``sha1Checksum`` and ``sha256Checksum``; the last
two "if available" (https://developers.google.com/drive/api/reference/rest/v3/files): a file
stored before Drive kept them has md5 alone, and the emulator's ``md5_only`` makes such files.
"""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from colab_magics.drive import DriveIntegrityError
from colab_magics.drive.checksum import ALGORITHMS, Checksum, fastest_first
from colab_magics.drive.model import DriveFile
from tests.drive.conftest import UNIT, payload, write


def test_the_order_is_every_algorithm_once_and_measured_once():
    assert sorted(fastest_first()) == sorted(ALGORITHMS)
    assert fastest_first() is fastest_first()


def test_a_file_is_verified_by_the_fastest_checksum_drive_gave():
    data = b"content"
    full = DriveFile.from_api(
        {
            "id": "1",
            "name": "x",
            "md5Checksum": hashlib.md5(data).hexdigest(),
            "sha1Checksum": hashlib.sha1(data).hexdigest(),
            "sha256Checksum": hashlib.sha256(data).hexdigest(),
        }
    )
    best = fastest_first()[0]
    assert full.verifiable_by == Checksum(best, hashlib.new(best, data).hexdigest())
    old = DriveFile.from_api({"id": "2", "name": "y", "md5Checksum": hashlib.md5(data).hexdigest()})
    assert old.verifiable_by == Checksum("md5", hashlib.md5(data).hexdigest())
    assert DriveFile.from_api({"id": "3", "name": "doc"}).verifiable_by is None


def _set_column(root, file_id: str, column: str, value: str | None) -> None:
    with sqlite3.connect(root / "drive.sqlite") as db:
        db.execute(f"UPDATE files SET {column} = ? WHERE id = ?", (value, file_id))


@pytest.mark.parametrize("size", [3 * UNIT + 7, UNIT // 2])  # pipeline / one request
def test_a_download_checks_the_chosen_checksum_and_no_other(client, emulator, tmp_path, size):
    """A wrong value in the checksum that is used fails the download; one in a checksum that
    is not used does not (each is read from Drive's answer, none is assumed)."""
    data = payload(size, seed=21)
    file_id = client.upload(data, "k/x.bin").file.id
    used = fastest_first()[0]
    unused = next(a for a in ALGORITHMS if a != used)
    _set_column(tmp_path / "drive", file_id, unused, "0" * len(hashlib.new(unused).hexdigest()))
    client.resolver.cache.clear()
    client.download("k/x.bin", tmp_path / "ok.bin")
    assert (tmp_path / "ok.bin").read_bytes() == data
    _set_column(tmp_path / "drive", file_id, used, "0" * len(hashlib.new(used).hexdigest()))
    client.resolver.cache.clear()
    with pytest.raises(DriveIntegrityError, match=f"Drive says {used} 000"):
        client.download("k/x.bin", tmp_path / "bad.bin")
    assert not (tmp_path / "bad.bin").exists()


def test_files_with_md5_only_upload_and_download_verified(client, emulator, tmp_path):
    """Uploads hash with the fastest algorithm while sending; when Drive's answer lacks that
    checksum the file is read again for one it has, and still compared."""
    emulator.settings.update({"md5_only": True})
    data = payload(6 * UNIT + 3, seed=22)
    up = client.upload(write(tmp_path / "src.bin", data), "m/old.bin")
    assert (up.file.md5, up.file.sha1, up.file.sha256) == (
        hashlib.md5(data).hexdigest(),
        None,
        None,
    )
    client.download("m/old.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data


def test_an_upload_with_the_callers_md5_is_checked_against_drives_md5(client, tmp_path):
    """A checkpoint blob is hashed as it is written; its upload is not hashed again, and
    Drive's md5 must equal the caller's."""
    data = payload(5 * UNIT, seed=23)
    path = write(tmp_path / "blob.bin", data)
    up = client.upload(path, "e/blob.bin", md5=hashlib.md5(data).hexdigest())
    assert up.file.md5 == hashlib.md5(data).hexdigest()
    with open(path, "r+b") as f:  # the bytes differ from what the caller hashed
        f.write(b"\x00" * 16)
    with pytest.raises(DriveIntegrityError, match="Drive has md5 .*, expected "):
        client.upload(path, "e/other.bin", md5=hashlib.md5(data).hexdigest())
    assert [f.name for f in client.listdir("e")] == ["blob.bin"]
