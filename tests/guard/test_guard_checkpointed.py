"""The guard checks the body of %%checkpointed, and says so when it cannot check a cell."""

from __future__ import annotations

import pytest

from colab_magics.connection import use_client
from colab_magics.guard import Guard, GuardError, install, uninstall
from tests.guard.conftest import a_minute_ago
from tests.guard.test_guard_cell import FILES

READ = 'first = 1\nimport os\nnames = os.listdir("{mount}/data")\n'
TRAIN = "for step in ckpt.range(2):\n    w[0] += 1\n"


@pytest.fixture
def capped(mounted, tmp_path, monkeypatch):
    """8 files on Drive in ``data``, the mount lists 5; the notebook's client is this one."""
    monkeypatch.setenv("COLAB_MAGICS_STAGING", str(tmp_path / "staging"))
    m = mounted(lag=0.2, cap=5)
    m.upload(FILES)
    m.settle()
    previous = use_client(m.client)
    yield m
    use_client(previous)


@pytest.fixture
def ns(shell):
    shell.user_ns.update(w=[0])
    yield shell.user_ns
    for name in ("first", "names", "w", "ckpt", "y"):
        shell.user_ns.pop(name, None)
    uninstall(shell)


def test_a_checkpointed_cell_reading_a_capped_folder_stops_before_its_first_statement(
    shell, ns, capped
):
    install(shell, Guard(capped.client, capped.mount, since=a_minute_ago()))
    plain = shell.run_cell(READ.format(mount=capped.mount)).error_in_exec
    assert isinstance(plain, GuardError)

    cell = "%%checkpointed guarded --save w\n" + READ.format(mount=capped.mount) + TRAIN
    err = shell.run_cell(cell).error_in_exec

    assert isinstance(err, GuardError)
    assert str(err) == str(plain)  # the message a plain cell gets
    assert "first" not in ns and "names" not in ns and ns["w"] == [0]


def test_a_watched_path_is_checked_once_per_checkpointed_cell(shell, ns, mounted, capsys):
    m = mounted(lag=30)
    (m.mount / "ck").mkdir()
    (m.mount / "ck" / "model.pt").write_bytes(b"m" * 100)  # pending: warned, not stopped
    guard = Guard(m.client, m.mount, since=a_minute_ago())
    install(shell, guard)
    guard.watch(m.mount / "ck")
    previous = use_client(m.client)
    try:
        result = shell.run_cell("%%checkpointed watched --save w\n" + TRAIN)
    finally:
        use_client(previous)
    assert result.error_in_exec is None, result.error_in_exec
    assert capsys.readouterr().err.count("/ck: 1 file (100 B) written") == 1


class Unreachable(Exception):
    pass


def _no_client():
    raise Unreachable("no route to Drive")


def test_a_guard_that_cannot_check_says_so_once_in_one_line_and_the_cell_runs(
    shell, ns, capped, capsys
):
    guard = Guard(_no_client, capped.mount, since=a_minute_ago())
    install(shell, guard)
    guard.watch(capped.mount / "data")  # checked by the cell and again by its body
    result = shell.run_cell(
        "%%checkpointed unchecked --save w\n" + READ.format(mount=capped.mount) + TRAIN
    )
    assert result.error_in_exec is None, result.error_in_exec
    assert ns["first"] == 1 and ns["w"] == [2]
    said = [line for line in capsys.readouterr().err.splitlines() if "Drive guard" in line]
    assert said == [
        "Drive guard: could not check the mount against Drive (Unreachable: no route to "
        "Drive); this cell runs unchecked."
    ]
    # The next cell tries again, and says so again.
    assert shell.run_cell(f'y = "{capped.mount}/data"').error_in_exec is None
    assert capsys.readouterr().err.count("could not check the mount") == 1


class BrokenGuard(Guard):
    """A guard whose settings cannot be read: the transformer itself fails."""

    @property
    def watched(self):
        raise RuntimeError("settings unreadable")

    @watched.setter
    def watched(self, value):
        pass


def test_a_transformer_that_fails_says_so_and_stays_installed(shell, ns, capped, capsys):
    install(shell, BrokenGuard(capped.client, capped.mount, since=a_minute_ago()))
    for _ in range(2):
        result = shell.run_cell(f'y = "{capped.mount}/data"')
        assert result.error_in_exec is None and ns["y"].endswith("/data")
        err = capsys.readouterr().err
        assert err.count("Drive guard: could not check the mount") == 1
        assert "RuntimeError: settings unreadable" in err
