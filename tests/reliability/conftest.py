"""Shared by the whole-promise tests: a real shell connected to the emulator as a user does it."""

from __future__ import annotations

import io
import os

import pytest
from googleapiclient.http import MediaIoBaseUpload

from colab_magics.connection import current_client, use_client
from tests.conftest import make_service


def connect_shell(shell, emulator, token_file) -> None:
    """``%drive_connect --url ... --token-file ...`` in ``shell``; fails the test if refused."""
    token_file.write_text(emulator.token)
    os.chmod(token_file, 0o600)
    line = f"%drive_connect --url {emulator.url} --token-file {token_file}"
    assert shell.run_cell(line).error_in_exec is None


@pytest.fixture
def connected(shell, emulator, tmp_path, monkeypatch):
    """The shell connected to ``emulator`` through ``%drive_connect``, working in a temporary
    folder (snapshots and caches under it too); yields the client the magics use."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("COLAB_MAGICS_STAGING", str(tmp_path / "staging"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    previous = use_client(None)
    connect_shell(shell, emulator, tmp_path / "token")
    try:
        yield current_client()
    finally:
        client = use_client(previous)
        if client is not None:
            client.close()


def run_cell(shell, code: str):
    """Run ``code`` in ``shell``; the exception it raised, or None."""
    return shell.run_cell(code).error_in_exec


def manifest_steps(client, folder: str) -> list[int]:
    """Steps of the checkpoint manifests in ``folder`` on Drive, in ascending order."""
    return sorted(
        int(f.name.split("-")[1]) for f in client.listdir(folder) if f.name.startswith("manifest-")
    )


def newest_manifest(client, folder: str):
    """The manifest file with the highest step in ``folder`` on Drive."""
    manifests = [f for f in client.listdir(folder) if f.name.startswith("manifest-")]
    return max(manifests, key=lambda f: f.name)


def replace_on_drive(emulator, file_id: str, data: bytes) -> None:
    """Another writer changes a file's bytes on Drive: a ``files.update`` media upload."""
    media = MediaIoBaseUpload(io.BytesIO(data), mimetype="application/octet-stream")
    make_service(emulator).files().update(fileId=file_id, media_body=media).execute()
