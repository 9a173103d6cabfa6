"""The runtime's age from the runtime itself, and a lifetime only where the runtime is known.

``/proc/uptime`` is the host's uptime; ``/proc/<pid>/stat`` field 22 is a process's start in
clock ticks after boot (proc(5): https://man7.org/linux/man-pages/man5/proc.5.html). A
container's first process is PID 1 in its PID namespace.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from colab_magics.checkpoint.deadline import Deadline, runtime_deadline
from colab_magics.runtime import (
    COLAB,
    in_container,
    process_started,
    runtime_age,
    runtime_kind,
    runtime_started,
)

HZ = os.sysconf("SC_CLK_TCK")
DAYS = 5 * 86400.0


def fake_root(tmp, *, uptime=DAYS, pid1_age=DAYS - 30, kernel_age=60.0, container=False):
    """A filesystem root whose /proc says: up ``uptime`` s, PID 1 started ``pid1_age`` s ago,
    this process ``kernel_age`` s ago (a command name with spaces and parentheses)."""
    proc = tmp / "proc"
    for pid, age, name in (("1", pid1_age, "init"), ("self", kernel_age, "python3 (ipykernel)")):
        (proc / pid).mkdir(parents=True)
        ticks = round((uptime - age) * HZ)
        rest = " ".join(["S"] + ["0"] * 18 + [str(ticks)] + ["0"] * 30)
        (proc / pid / "stat").write_text(f"42 ({name}) {rest}\n")
    (proc / "uptime").write_text(f"{uptime:.2f} 12.00\n")
    (proc / "1" / "cgroup").write_text("0::/kubepods/pod1/abc\n" if container else "0::/\n")
    return str(tmp)


@pytest.fixture
def not_colab(monkeypatch):
    for name in ("COLAB_RELEASE_TAG", "container"):
        monkeypatch.delenv(name, raising=False)


def test_a_workstation_runtime_is_as_old_as_its_kernel_not_the_host(tmp_path, not_colab):
    root = fake_root(tmp_path, uptime=DAYS, kernel_age=60.0)
    assert runtime_kind() is None and not in_container(root)
    assert runtime_age(root) == pytest.approx(60.0, abs=2)


def test_in_a_container_the_runtime_is_as_old_as_the_container(tmp_path, not_colab):
    root = fake_root(tmp_path, pid1_age=3600.0, container=True)
    assert in_container(root)
    assert runtime_age(root) == pytest.approx(3600.0, abs=2)


def test_on_colab_the_runtime_starts_with_the_container(tmp_path, not_colab, monkeypatch):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20260101-060000_RC00")
    root = fake_root(tmp_path, pid1_age=7200.0, kernel_age=100.0)
    assert runtime_kind() == COLAB
    assert runtime_age(root) == pytest.approx(7200.0, abs=2)


def test_without_proc_the_runtime_starts_no_later_than_this_module(tmp_path, not_colab):
    assert process_started("self", str(tmp_path)) is None
    assert 0 < runtime_started(str(tmp_path)) <= time.time()


def test_the_real_proc_gives_a_child_process_start_time():
    before = time.time()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        started = process_started(child.pid)
    finally:
        child.kill()
        child.wait()
    if not os.path.exists("/proc/uptime"):
        assert started is None
    else:
        assert before - 1.5 <= started <= time.time() + 0.5
    assert 0 < runtime_started() <= time.time()


def test_no_default_lifetime_where_the_runtime_is_unknown(not_colab):
    host_uptime = lambda: DAYS  # noqa: E731
    deadline = runtime_deadline(None, "10m", age=host_uptime)
    assert deadline.lifetime is None and not deadline.near(3600)


def test_colab_gets_twelve_hours_and_pro_says_24(not_colab, monkeypatch):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20260101-060000_RC00")
    eleven_hours = lambda: 11 * 3600.0  # noqa: E731
    assert runtime_deadline(None, "10m", age=eleven_hours).lifetime == 12 * 3600
    assert not runtime_deadline(None, "10m", age=eleven_hours).near(60)
    assert runtime_deadline(None, "10m", age=lambda: 11.9 * 3600).near(60)
    assert not runtime_deadline("24h", "10m", age=lambda: 20 * 3600.0).near(60)
    assert runtime_deadline("none", "10m").lifetime is None
    with pytest.raises(ValueError, match="12h00m is not longer than --margin 13h"):
        runtime_deadline(None, "13h")


def test_a_given_lifetime_applies_anywhere(not_colab):
    deadline = runtime_deadline("2h", "10m", age=lambda: 3600.0)
    assert deadline.seconds_left() == pytest.approx(3600.0)
    assert not deadline.near(60) and deadline.near(3100)


@pytest.mark.parametrize(("lifetime", "margin"), [("5m", "10m"), ("10m", "10m"), ("1h", "2h")])
def test_a_lifetime_not_longer_than_the_margin_is_refused(lifetime, margin):
    with pytest.raises(ValueError, match="is not longer than --margin"):
        runtime_deadline(lifetime, margin)


def test_no_deadline_is_never_near():
    assert not Deadline(None, 600).near(10**9)
