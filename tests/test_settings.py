"""Settings through ``%config ColabMagics.*`` in a real shell, the environment still honoured.

``%config`` hands ``Class.trait = value`` to every Configurable in ``shell.configurables``
(IPython/core/magics/config.py); traitlets warns about an unknown trait and IPython prints a
rejected value as an error, for ours as for IPython's own classes.
"""

from __future__ import annotations

import logging

import pytest

from colab_magics import settings
from colab_magics.checkpoint.deadline import runtime_deadline
from colab_magics.checkpoint.lease import lease_seconds
from colab_magics.checkpoint.staging import staging_folder
from colab_magics.connection import mount_root, use_client
from colab_magics.guard import Guard, installed
from colab_magics.sync_command import sync_request
from tests.guard.conftest import a_minute_ago, mounted  # noqa: F401 (a fixture)

FILES = {f"data/f{i}.bin": bytes([i]) * 100 for i in range(8)}


@pytest.fixture(autouse=True)
def _no_config_left(shell):
    """``%config`` also writes into the shell's own config, which outlives a test."""
    shell.config.pop("ColabMagics", None)
    yield
    shell.config.pop("ColabMagics", None)


def test_config_sets_the_guards_folder_limit_as_the_checks_see_it(shell, mounted):  # noqa: F811
    m = mounted()
    m.upload(FILES)
    m.settle()
    guard = Guard(m.client, m.mount, since=a_minute_ago())
    assert guard.check_paths([m.mount / "data"]) == []  # 8 entries: far under 5,000
    shell.run_line_magic("config", "ColabMagics.guard_folder_limit = 5")
    fresh = Guard(m.client, m.mount, since=a_minute_ago())
    [finding] = fresh.check_paths([m.mount / "data"])
    assert finding.kind == "large" and "threshold is 5" in finding.message
    assert installed(shell).threshold == 5
    assert Guard(m.client, m.mount, threshold=100).threshold == 100  # an explicit one wins


def test_config_sets_the_quota_ratio(shell):
    shell.run_line_magic("config", "ColabMagics.guard_quota_ratio = 0.5")
    assert installed(shell).quota_ratio == 0.5


def test_config_lease_seconds_wins_over_the_environment_which_wins_over_30(shell, monkeypatch):
    monkeypatch.delenv(settings.LEASE_ENV, raising=False)
    assert lease_seconds() == 30
    monkeypatch.setenv(settings.LEASE_ENV, "7")
    assert lease_seconds() == 7  # read when asked, not when the extension loaded
    shell.run_line_magic("config", "ColabMagics.lease_seconds = 5")
    assert lease_seconds() == 5
    shell.run_line_magic("config", "ColabMagics.lease_seconds = None")
    assert lease_seconds() == 7


def test_a_bad_environment_value_names_the_variable(shell, monkeypatch):
    monkeypatch.setenv(settings.LEASE_ENV, "-3")
    with pytest.raises(ValueError, match=r"COLAB_MAGICS_LEASE_SECONDS='-3': give the lease"):
        lease_seconds()


def test_config_staging_and_mount(shell, tmp_path, monkeypatch):
    monkeypatch.setenv(settings.STAGING_ENV, str(tmp_path / "from-env"))
    monkeypatch.setenv(settings.MOUNT_ENV, str(tmp_path / "env-mount"))
    previous = use_client(None)
    try:
        assert staging_folder("run") == str(tmp_path / "from-env" / "run")
        assert mount_root() == str(tmp_path / "env-mount")
        shell.run_line_magic("config", f"ColabMagics.staging = {str(tmp_path / 'set')!r}")
        shell.run_line_magic("config", f"ColabMagics.mount = {str(tmp_path / 'mnt')!r}")
        assert staging_folder("run") == str(tmp_path / "set" / "run")
        assert mount_root() == str(tmp_path / "mnt")
    finally:
        use_client(previous)


def test_config_lifetime_margin_and_jobs_are_the_defaults(shell):
    shell.run_line_magic("config", "ColabMagics.lifetime = '3h'")
    shell.run_line_magic("config", "ColabMagics.margin = '20m'")
    deadline = runtime_deadline(None, None, age=lambda: 0.0)
    assert (deadline.lifetime, deadline.margin) == (3 * 3600, 20 * 60)
    assert runtime_deadline("1h", "1m", age=lambda: 0.0).lifetime == 3600  # the flags win
    shell.run_line_magic("config", "ColabMagics.jobs = 3")
    assert sync_request("push", ["a", "b"]).jobs == 3
    assert sync_request("push", ["a", "b"], jobs=2).jobs == 2


def test_unknown_settings_and_bad_values_are_reported_as_for_ipythons_own(shell, caplog, capsys):
    with caplog.at_level(logging.WARNING):
        shell.run_cell("%config ColabMagics.guard_treshold = 5")
        shell.run_cell("%config HistoryManager.no_such_option = 5")
    warned = [r.getMessage() for r in caplog.records]
    assert "Config option `guard_treshold` not recognized by `ColabMagics`." in warned
    assert "Config option `no_such_option` not recognized by `HistoryManager`." in warned
    shell.run_cell("%config ColabMagics.jobs = 0")
    assert settings.get("jobs") == 8
    result = shell.run_cell("%config colabmagics")
    assert "Did you mean ColabMagics" in str(result.error_in_exec)
    capsys.readouterr()
    shell.run_cell("%config ColabMagics")
    listing = capsys.readouterr().out
    for name in ("guard_folder_limit", "lease_seconds", "staging", "mount", "lifetime", "jobs"):
        assert f"ColabMagics.{name}=" in listing


def test_unloading_restores_the_defaults_and_reloading_the_shells_config(shell):
    shell.run_line_magic("config", "ColabMagics.guard_folder_limit = 7")
    shell.run_line_magic("unload_ext", "colab_magics")
    try:
        assert settings.get("guard_folder_limit") == 5000
        assert not any(isinstance(c, settings.ColabMagics) for c in shell.configurables)
    finally:
        shell.run_line_magic("load_ext", "colab_magics")
    assert settings.get("guard_folder_limit") == 7  # %config went into the shell's config too


def test_settings_from_the_shells_config_apply_at_load(shell):
    shell.run_line_magic("unload_ext", "colab_magics")
    shell.config.ColabMagics.lease_seconds = 12.0
    shell.run_line_magic("load_ext", "colab_magics")
    assert lease_seconds() == 12
