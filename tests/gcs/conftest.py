"""A real GCS emulator (gcp-storage-emulator, in-process) on loopback, and clients for it.

The client is google-cloud-storage, pointed at the emulator by the library's own documented
setting, ``STORAGE_EMULATOR_HOST``
(https://cloud.google.com/python/docs/reference/storage/latest — "Using the emulator").
"""

from __future__ import annotations

import base64
import logging
import socket
from collections.abc import Iterator

import pytest

pytest.importorskip("gcp_storage_emulator", reason="pip install -e '.[test]' installs it")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GcsEmulator:
    """One emulator server; ``url`` is its endpoint, ``storage`` its stored state."""

    def __init__(self) -> None:
        from gcp_storage_emulator.server import create_server

        logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = create_server("127.0.0.1", self.port, in_memory=True)
        self.server.start()

    @property
    def storage(self):
        return self.server._storage

    def drop_md5(self, bucket: str, name: str) -> None:
        """Make ``name`` look like a composite object: GCS keeps no md5 for those
        (https://cloud.google.com/storage/docs/composite-objects#metadata), but this emulator
        computes one for every object, composed ones included."""
        meta = self.storage.objects[bucket][name]
        meta["md5Hash"] = None

    def wrong_hash(self, bucket: str, name: str, field: str) -> None:
        """Replace the stored ``md5Hash`` or ``crc32c`` of ``name`` with another value of
        the same form (base64 of as many bytes)."""
        meta = self.storage.objects[bucket][name]
        size = len(base64.b64decode(meta[field]))
        meta[field] = base64.b64encode(bytes(size)).decode("ascii")

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def gcs_emulator(monkeypatch) -> Iterator[GcsEmulator]:
    emu = GcsEmulator()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emu.url)
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def gcs(gcs_emulator):
    """Our client on the emulator (anonymous, as the library is for an emulator)."""
    from colab_magics.gcs import GcsClient

    return GcsClient()


@pytest.fixture
def bucket(gcs):
    """A fresh bucket ``data-bucket``."""
    gcs.client.create_bucket("data-bucket")
    return gcs.client.bucket("data-bucket")


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"
