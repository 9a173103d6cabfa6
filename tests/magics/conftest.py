"""A connected emulator whose simulated mount's path holds a space, as Colab's does."""

from __future__ import annotations

import pytest

from colab_magics.connection import current_client, use_client
from colab_magics.emulator import start_emulator


@pytest.fixture
def mounted(shell, tmp_path, monkeypatch):
    """An emulator whose mount is at ``.../My Drive`` (lagging 30 s, listing at most 5 entries
    a folder), connected with a quoted ``--mount`` and a quoted ``--token-file``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLAB_MAGICS_STAGING", str(tmp_path / "staging"))
    mount = tmp_path / "My Drive"
    handle = start_emulator(tmp_path / "drive", mount=mount, mount_lag=30, mount_list_cap=5)
    token = tmp_path / "secret folder" / "drive token"
    token.parent.mkdir()
    token.write_text(handle.token)
    previous = use_client(None)
    result = shell.run_cell(f"%drive_connect --url {handle.url} --token-file '{token}' "
                            f'--mount "{mount}"')  # fmt: skip
    assert result.error_in_exec is None
    yield handle, mount
    shell.run_cell("%drive_guard off")
    current_client().close()
    use_client(previous)
    shell.run_line_magic("unload_ext", "colab_magics")  # the next test's guard starts afresh
    shell.run_line_magic("load_ext", "colab_magics")
    handle.stop()
