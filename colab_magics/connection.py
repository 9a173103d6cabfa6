"""The notebook's current Drive connection, shared by every magic and public function."""

from __future__ import annotations

import threading
from typing import Any

import colab_magics.settings as settings
from colab_magics.drive import DriveClient, connect

_lock = threading.Lock()
_client: DriveClient | None = None


def current_client(**connect_options: Any) -> DriveClient:
    """The client set by :func:`use_client`, or a new ``connect()`` (announced in one line)."""
    global _client
    with _lock:
        if _client is None:
            _client = connect(**_with_mount(connect_options))
            print(_client.description)
        return _client


def reconnect(**connect_options: Any) -> DriveClient:
    """A new ``connect()`` made the current client; the one it replaces is closed."""
    client = connect(**_with_mount(connect_options))
    previous = use_client(client)
    if previous is not None and previous is not client:
        previous.close()
    return client


def read_token_file(path: str) -> str:
    """The token in the file at ``path``; ``ValueError`` that does not show the path (it may
    be the token itself, pasted in the wrong place)."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ValueError(f"--token-file: cannot read that file ({why})") from None


def mount_root() -> str | None:
    """Where My Drive is mounted: the current client's, else the ``mount`` setting or
    ``$COLAB_MAGICS_MOUNT`` (None: Colab's own ``/content/drive/MyDrive``)."""
    with _lock:
        client = _client
    if client is not None and client.mount_root:
        return client.mount_root
    return settings.get("mount")


def use_client(client: DriveClient | None) -> DriveClient | None:
    """Make ``client`` the current one (None forgets it); returns the previous one."""
    global _client
    with _lock:
        previous, _client = _client, client
    return previous


def _with_mount(options: dict[str, Any]) -> dict[str, Any]:
    if options.get("mount") is None:
        options = {**options, "mount": settings.get("mount")}
    return options
