"""%drive_status, %drive_flush and %drive_guard in a real shell, on the simulated mount."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from colab_magics.connection import current_client, use_client
from colab_magics.emulator import start_emulator
from colab_magics.guard import GuardError


@pytest.fixture
def mounted(shell, tmp_path):
    """An emulator whose mount lags 30 s and lists at most 5 entries a folder, connected."""
    mount = tmp_path / "MyDrive"
    handle = start_emulator(tmp_path / "drive", mount=mount, mount_lag=30, mount_list_cap=5)
    (tmp_path / "token").write_text(handle.token)
    previous = use_client(None)
    result = shell.run_cell(
        f"%drive_connect --url {handle.url} --token-file {tmp_path / 'token'} --mount {mount}"
    )
    assert result.error_in_exec is None
    yield handle, mount
    shell.run_cell("%drive_guard off")
    current_client().close()
    use_client(previous)
    shell.run_line_magic("unload_ext", "colab_magics")  # the next test's guard starts afresh
    shell.run_line_magic("load_ext", "colab_magics")
    handle.stop()


def test_a_file_written_to_the_mount_is_pending_until_pushed(shell, mounted, capsys):
    _, mount = mounted
    (mount / "results.csv").write_text("epoch,loss\n1,0.5\n")
    assert shell.run_cell("%drive_status").error_in_exec is None
    assert "results.csv" in capsys.readouterr().out
    assert shell.run_cell("%drive_flush --push").error_in_exec is None
    capsys.readouterr()
    assert shell.run_cell("%drive_status").error_in_exec is None
    assert "results.csv" not in capsys.readouterr().out
    assert current_client().read_bytes("results.csv") == b"epoch,loss\n1,0.5\n"


def test_flush_that_cannot_finish_in_time_names_what_is_left(shell, mounted):
    _, mount = mounted
    (mount / "late.txt").write_text("not synced for 30 s")
    error = shell.run_cell("%drive_flush --timeout 0.5s").error_in_exec
    assert isinstance(error, UsageError) and "late.txt" in str(error)


def test_the_guard_stops_a_cell_reading_a_partial_listing(shell, mounted, capsys):
    handle, mount = mounted
    client = current_client()
    for i in range(8):
        client.upload(bytes(100), f"data/img{i}.jpg")
    handle.mount.sync_now()
    shell.user_ns.pop("first", None)
    error = shell.run_cell(f'first = 1\nfiles = __import__("os").listdir("{mount}/data")')
    assert isinstance(error.error_in_exec, GuardError)
    assert "lists 5 entries but Drive holds 8" in str(error.error_in_exec)
    assert "first" not in shell.user_ns  # stopped before its first line

    assert shell.run_cell("%drive_guard on --warn").error_in_exec is None
    assert shell.run_cell(f'first = 1\nn = len(__import__("os").listdir("{mount}/data"))')
    assert shell.user_ns["first"] == 1 and shell.user_ns["n"] == 5


def test_a_watched_path_is_checked_before_every_cell(shell, mounted, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    handle, mount = mounted
    client = current_client()
    for i in range(8):
        client.upload(bytes(10), f"watched/f{i}")
    handle.mount.sync_now()
    assert shell.run_cell(f"%drive_guard watch {mount}/watched").error_in_exec is None
    shell.user_ns.pop("y", None)
    assert isinstance(shell.run_cell("y = 2").error_in_exec, GuardError)
    assert "y" not in shell.user_ns
    # The fix the message suggests, and turning the guard off, are never blocked by it.
    assert shell.run_cell("%drive_sync pull watched local_copy").error_in_exec is None
    assert shell.run_cell(f"%drive_guard unwatch {mount}/watched").error_in_exec is None
    assert shell.run_cell("y = 2").error_in_exec is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%drive_guard watch", "needs a mount path"),
        ("%drive_guard sideways", "invalid choice"),
        ("%drive_status /elsewhere/x", "is not under the mount"),
        ("%drive_flush --timeout soon", "--timeout"),
    ],
)
def test_bad_input_is_one_line(shell, mounted, line, message):
    error = shell.run_cell(line).error_in_exec
    assert isinstance(error, UsageError) and message in str(error)
