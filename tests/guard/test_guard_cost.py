"""When nothing changed, checking a folder asks Drive (almost) nothing: the changes feed and a
short-lived view stand in for listing again (bench/guard_cost.py measures the time)."""

from __future__ import annotations

from colab_magics.guard import Guard, install, uninstall
from tests.guard.conftest import a_minute_ago

CELLS = 200


def test_an_unchanged_folder_is_not_listed_again(shell, mounted):
    m = mounted()
    m.upload({f"data/img{i:03}.jpg": bytes([i]) * 200 for i in range(100)})
    m.settle()
    data = m.mount / "data"
    guard = Guard(m.client, m.mount, since=a_minute_ago())
    assert guard.check_paths([data]) == []
    install(shell, guard)
    try:
        before = m.client.requests
        for _ in range(CELLS):
            shell.run_cell(f'n = len(__import__("os").listdir("{data}"))', store_history=False)
        calls = m.client.requests - before
        assert shell.user_ns["n"] == 100
    finally:
        uninstall(shell)
        shell.user_ns.pop("n", None)
    # One changes.list per max_age (1 s) at most, never a listing of the 100 files.
    assert calls <= 1 + CELLS // 50
