"""A DriveClient on the emulator with fast retries, and helpers to build and compare trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from colab_magics.drive.client import DriveClient
from tests.drive.conftest import UNIT, make_client

__all__ = ["UNIT", "make_client"]


@pytest.fixture
def client(emulator):
    c = make_client(emulator)
    yield c
    c.close()


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


# Nested folders, an empty file, an empty folder, unicode names, a multi-chunk file.
TREE = {
    "a.txt": b"alpha",
    "empty.bin": b"",
    "sub/b.txt": b"beta" * 100,
    "sub/deeper/c.bin": bytes(range(256)) * 3000,
    "données/résumé ✓.txt": "unicode ✓".encode(),
    "sub/日本/ファイル.txt": b"kanji",
    'it\'s a \\ "quoted" name.txt': b"quotes",
}


def make_tree(
    root: Path, files: dict[str, bytes] = TREE, dirs: tuple[str, ...] = ("void",)
) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    return root


def read_tree(root: Path) -> tuple[dict[str, bytes], set[str]]:
    """Files (path -> bytes) and folders under ``root``, as ``/``-separated relative paths."""
    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    for folder, subdirs, names in os.walk(root):
        rel = os.path.relpath(folder, root)
        for d in subdirs:
            dirs.add(d if rel == "." else f"{rel}/{d}")
        for n in names:
            files[n if rel == "." else f"{rel}/{n}"] = (Path(folder) / n).read_bytes()
    return files, dirs


def drive_tree(client: DriveClient, path: str) -> dict[str, bytes]:
    """Every file under a Drive folder with its content (duplicates: the one paths resolve to)."""
    out = {}
    for rel, f in client.walk(path):
        if not f.is_folder:
            out[rel] = client.read_bytes(f)
    return out


class KillAfter:
    """A progress sink that raises KeyboardInterrupt once ``n`` files are done (a kill)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def update(self, **fields) -> None:
        if fields.get("files_done", 0) >= self.n:
            raise KeyboardInterrupt
