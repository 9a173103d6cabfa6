"""The notebook's current Drive connection, shared by every magic and public function."""

from __future__ import annotations

import os
import threading
from typing import Any

from colab_magics.drive import DriveClient, connect

_lock = threading.Lock()
_client: DriveClient | None = None


def current_client(**connect_options: Any) -> DriveClient:
    """The client set by :func:`use_client`, or a new ``connect()`` (announced in one line)."""
    global _client
    with _lock:
        if _client is None:
            _client = connect(**connect_options)
            print(_client.description)
        return _client


def mount_root() -> str | None:
    """Where My Drive is mounted: the current client's, else ``$COLAB_MAGICS_MOUNT`` (None:
    Colab's own ``/content/drive/MyDrive``)."""
    with _lock:
        client = _client
    if client is not None and client.mount_root:
        return client.mount_root
    return os.environ.get("COLAB_MAGICS_MOUNT")


def use_client(client: DriveClient | None) -> DriveClient | None:
    """Make ``client`` the current one (None forgets it); returns the previous one."""
    global _client
    with _lock:
        previous, _client = _client, client
    return previous
