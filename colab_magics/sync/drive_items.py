"""Drive files as items of the store-neutral fetch (:mod:`colab_magics.sync.fetch`), and the
one lookup that says when a path to pull is missing."""

from __future__ import annotations

from colab_magics.drive import Callback, DriveClient, DriveFile
from colab_magics.drive.paths import join
from colab_magics.drive.staging import Staging
from colab_magics.sync.errors import SyncError
from colab_magics.sync.fetch import Download, Get
from colab_magics.sync.remote import lookup


def drive_download(rel: str, file: DriveFile, dest: str) -> Download:
    """``file`` as an item of the store-neutral :func:`colab_magics.sync.fetch.fetch`."""
    return Download(rel, dest, file.size, file.md5, remote=file)


def drive_get(client: DriveClient, staging: Staging | None = None) -> Get:
    """The :data:`Get` for Drive files, through the temporary files of ``staging`` (by
    default one staging folder per file)."""

    def get(d: Download, progress: Callback) -> object:
        return client.download(d.remote, d.dest, progress=progress, staging=staging)

    return get


def require(client: DriveClient, parts: tuple[str, ...]) -> DriveFile:
    found = lookup(client, parts)
    if found is None:
        raise SyncError(
            f"drive:{join(parts)} does not exist on Drive. Paths are relative to My Drive "
            "(or start with the mount, /content/drive/MyDrive/...); check the spelling, and "
            "that this account can see it."
        )
    return found
