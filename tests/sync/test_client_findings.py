"""Client behaviour that sync works around or that disagrees with the client's own path rule.

These are strict xfails: they pass while the client bug is there, and fail (telling whoever
fixes it to drop the marker) once it is fixed. Sync itself does not use ``TreeIndex`` and
resolves folder/file name clashes in ``sync.remote`` the way path resolution does.
"""

from __future__ import annotations

import warnings

import pytest

from colab_magics.drive import DuplicateNameWarning
from tests.sync.conftest import make_client


def _file_then_folder_of_one_name(client) -> None:
    """``d/a`` the file (older), and ``d/a/`` the folder holding ``x.txt`` (newer)."""
    client.upload(b"file", "d/a")
    client.upload(b"inside", "d/a/x.txt")


@pytest.mark.xfail(
    strict=True,
    reason="client bug: TreeIndex.entries() picks the older *file* for a name a folder shares, "
    "so the folder's contents vanish from the index although client.stat() resolves them",
)
def test_tree_index_lists_what_path_resolution_finds(client):
    _file_then_folder_of_one_name(client)
    assert client.stat("d/a/x.txt").name == "x.txt"
    assert "a/x.txt" in client.index("d").entries()


@pytest.mark.xfail(
    strict=True,
    reason="client bug: stat() of a name held by a file and a folder depends on the client's "
    "cache: the client that made the folder gets the folder, a fresh one the (older) file",
)
def test_stat_means_the_same_file_in_every_client(client, emulator):
    _file_then_folder_of_one_name(client)
    fresh = make_client(emulator)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DuplicateNameWarning)
            assert client.stat("d/a").id == fresh.stat("d/a").id
    finally:
        fresh.close()
