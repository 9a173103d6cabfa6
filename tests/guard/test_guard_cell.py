"""The guard in a real IPython shell: it stops a cell before its first line runs."""

from __future__ import annotations

import pytest

from colab_magics.guard import Guard, GuardError, install, installed, uninstall
from tests.guard.conftest import a_minute_ago

FILES = {f"data/f{i}.bin": bytes([i]) * (1000 + i) for i in range(8)}


@pytest.fixture
def capped(mounted):
    """8 files on Drive in ``data``; the mount lists 5 of them."""
    m = mounted(lag=0.2, cap=5)
    m.upload(FILES)
    m.settle()
    assert len(list((m.mount / "data").iterdir())) == 5
    return m


@pytest.fixture
def guarded(shell):
    """``guarded(guard)``: install ``guard`` on the test shell (uninstalled afterwards)."""
    yield lambda guard: install(shell, guard)
    uninstall(shell)
    for name in ("first", "names", "y"):
        shell.user_ns.pop(name, None)


def test_a_partial_listing_stops_the_cell_before_its_first_line(shell, guarded, capped):
    guard = Guard(capped.client, capped.mount, since=a_minute_ago())
    guarded(guard)
    assert installed(shell) is guard
    shell.user_ns.pop("first", None)

    result = shell.run_cell(f'first = 1\nimport os\nnames = os.listdir("{capped.mount}/data")')

    err = result.error_in_exec
    assert isinstance(err, GuardError)
    assert "first" not in shell.user_ns and "names" not in shell.user_ns
    [finding] = err.findings
    assert (finding.kind, finding.mount_count, finding.drive_count) == ("partial", 5, 8)
    text = str(err)
    assert f"{capped.mount}/data: the mount lists 5 entries but Drive holds 8" in text
    assert "`%drive_sync pull data /content/data` (8 files, 8.0 KB, under a second" in text
    assert "'f5.bin'" in text and "%drive_guard off" in text


def test_a_file_the_mount_does_not_show_stops_the_cell(shell, guarded, capped):
    guarded(Guard(capped.client, capped.mount, since=a_minute_ago()))
    result = shell.run_cell(f'first = 1\nopen(f"{capped.mount}/data/f7.bin").read()')
    assert isinstance(result.error_in_exec, GuardError)
    assert result.error_in_exec.findings[0].kind == "missing"
    assert "first" not in shell.user_ns


def test_with_warn_the_cell_runs_and_the_warning_is_printed(shell, guarded, capped, capsys):
    guarded(Guard(capped.client, capped.mount, warn=True, since=a_minute_ago()))
    result = shell.run_cell(f'first = 1\nimport os\nnames = os.listdir("{capped.mount}/data")')
    assert result.error_in_exec is None
    assert shell.user_ns["first"] == 1 and len(shell.user_ns["names"]) == 5
    assert "Drive guard: " in capsys.readouterr().err


def test_a_cell_without_mount_paths_is_untouched(shell, guarded, capped):
    guard = Guard(capped.client, capped.mount, since=a_minute_ago())
    guarded(guard)
    before = capped.client.requests
    result = shell.run_cell("y = 2\nz = '/content/elsewhere'")
    assert result.error_in_exec is None and shell.user_ns["y"] == 2
    assert capped.client.requests == before  # no Drive call at all
    # Magic arguments are the magic's business (the fix itself is one): not checked either.
    result = shell.run_cell(f"y = 4\n%ls {capped.mount}/data")
    assert result.error_in_exec is None and shell.user_ns["y"] == 4
    assert guard.check_source(f"%drive_sync pull {capped.mount}/data /content/data\n") == []
    assert capped.client.requests == before


def test_watched_paths_are_checked_on_every_cell_and_off_turns_it_off(shell, guarded, capped):
    guard = Guard(capped.client, capped.mount, since=a_minute_ago())
    guarded(guard)
    guard.watch(capped.mount / "data")
    result = shell.run_cell("first = 1")
    assert isinstance(result.error_in_exec, GuardError) and "first" not in shell.user_ns
    guard.enabled = False
    assert shell.run_cell("first = 1").error_in_exec is None and shell.user_ns["first"] == 1
    guard.enabled = True
    guard.unwatch(capped.mount / "data")
    assert shell.run_cell("y = 3").error_in_exec is None


def test_uninstall_leaves_cells_alone(shell, guarded, capped):
    guarded(Guard(capped.client, capped.mount, since=a_minute_ago()))
    uninstall(shell)
    assert installed(shell) is None
    result = shell.run_cell(f'first = 1\nimport os\nnames = os.listdir("{capped.mount}/data")')
    assert result.error_in_exec is None and len(shell.user_ns["names"]) == 5


def test_future_imports_stay_first(shell, guarded, capped):
    guarded(Guard(capped.client, capped.mount, since=a_minute_ago()))
    result = shell.run_cell(f'from __future__ import annotations\nfirst = "{capped.mount}/data"')
    assert isinstance(result.error_in_exec, GuardError)


def test_a_pending_write_is_reported_and_the_cell_runs(shell, guarded, mounted, capsys):
    m = mounted(lag=30)
    (m.mount / "ck").mkdir()
    (m.mount / "ck" / "model.pt").write_bytes(b"m" * 100)
    guarded(Guard(m.client, m.mount, since=a_minute_ago()))
    result = shell.run_cell(f'first = open("{m.mount}/ck/model.pt", "rb").read()')
    assert result.error_in_exec is None and shell.user_ns["first"] == b"m" * 100
    err = capsys.readouterr().err
    assert f"{m.mount}/ck/model.pt: 1 file (100 B) written in this runtime" in err
    assert "not on Drive" in err and "%drive_flush" in err


def test_the_client_is_made_only_when_a_cell_names_the_mount(shell, guarded, capped):
    made = []

    def connect():
        made.append(1)
        return capped.client

    guarded(Guard(connect, capped.mount, since=a_minute_ago()))
    assert shell.run_cell("y = 1").error_in_exec is None and made == []
    result = shell.run_cell(f'first = "{capped.mount}/data"')
    assert isinstance(result.error_in_exec, GuardError) and made == [1]
    shell.run_cell(f'first = "{capped.mount}/data"')
    assert made == [1]


def test_a_listing_that_drops_entries_between_cells_stops_the_next_cell(
    shell, guarded, mounted, tmp_path
):
    """Drive unchanged, the mount's listing of the same folder loses entries from one cell to
    the next and gets them back: each cell is checked against the listing of its own moment."""
    m = mounted(lag=30)
    m.upload(FILES)
    m.settle()
    guarded(Guard(m.client, m.mount, since=a_minute_ago()))
    data = m.mount / "data"
    cell = f'first = 1\nnames = __import__("os").listdir("{data}")'
    for _ in range(3):
        assert shell.run_cell(cell).error_in_exec is None
    aside = tmp_path / "aside"
    aside.mkdir()
    for name in ("f1.bin", "f6.bin"):  # what a listing that gave up early would leave out
        (data / name).rename(aside / name)
    for _ in range(2):
        err = shell.run_cell(cell).error_in_exec
        assert isinstance(err, GuardError)
        [finding] = err.findings
        assert (finding.kind, finding.mount_count, finding.drive_count) == ("partial", 6, 8)
        assert "'f1.bin', 'f6.bin'" in finding.message
    for name in ("f1.bin", "f6.bin"):
        (aside / name).rename(data / name)
    assert shell.run_cell(cell).error_in_exec is None
    assert len(shell.user_ns["names"]) == 8


def test_a_guard_installed_again_checks_its_first_cell(shell, guarded, capped):
    guard = Guard(capped.client, capped.mount, since=a_minute_ago())
    cell = f'names = __import__("os").listdir("{capped.mount}/data")'
    for _ in range(2):
        guarded(guard)
        assert isinstance(shell.run_cell(cell).error_in_exec, GuardError)
        uninstall(shell)
