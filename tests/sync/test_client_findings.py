"""A name held by both a file and a folder means the folder, everywhere and for every client."""

from __future__ import annotations

import warnings

from colab_magics.drive import DuplicateNameWarning
from tests.sync.conftest import make_client


def _file_then_folder_of_one_name(client) -> None:
    """``d/a`` the file (older), and ``d/a/`` the folder holding ``x.txt`` (newer)."""
    client.upload(b"file", "d/a")
    client.upload(b"inside", "d/a/x.txt")


def test_tree_index_lists_what_path_resolution_finds(client):
    _file_then_folder_of_one_name(client)
    assert client.stat("d/a/x.txt").name == "x.txt"
    assert "a/x.txt" in client.index("d").entries()


def test_stat_means_the_same_file_in_every_client(emulator):
    # A long cache_ttl: the changes feed (which may drop the cached name) is not read.
    maker = make_client(emulator, cache_ttl=3600)
    _file_then_folder_of_one_name(maker)
    fresh = make_client(emulator)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DuplicateNameWarning)
            assert maker.stat("d/a").id == fresh.stat("d/a").id
    finally:
        fresh.close()
        maker.close()
