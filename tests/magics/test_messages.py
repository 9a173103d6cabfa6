"""What a user reads: help with every default, a dry run's summary, each error once, plurals."""

from __future__ import annotations

import builtins
import os
import signal

import pytest
from IPython.core.error import UsageError

from colab_magics.connection import use_client
from colab_magics.drive import connect
from colab_magics.magics import ALL_MAGICS
from colab_magics.sync.report import SyncReport


@pytest.fixture
def client(emulator, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = connect(url=emulator.url, token=emulator.token)
    previous = use_client(c)
    yield c
    use_client(previous)
    c.close()


def test_cell_magic_help_names_it_with_two_percent_signs_and_shows_defaults(shell, capsys):
    shell.run_cell("%%checkpointed?\n")
    shown = capsys.readouterr().out
    assert "%%checkpointed [--save SAVE]" in shown
    assert "%%%checkpointed" not in shown
    for default in (
        "(default: 10m)",
        "(default: 3)",
        "(default: ckpt)",
        "12h on Colab",
        "24h is Colab Pro's",
        "elsewhere none",
        "colab_magics/checkpoints/NAME",
    ):
        assert default in " ".join(shown.split()), default  # fmt: skip


def test_each_magic_help_is_its_own_and_states_its_defaults(shell, capsys):
    shell.run_cell("%drive_sync?")
    shown = capsys.readouterr().out
    assert "%drive_sync [--delete]" in shown and "Push a local tree" in shown
    assert "checkpointed" not in shown
    assert "(default: 8, or ColabMagics.jobs)" in shown
    shell.run_cell("%drive_flush?")
    assert "(default: 10m)" in capsys.readouterr().out


def test_every_option_that_has_a_default_says_it_in_the_help():
    for magics in ALL_MAGICS:
        for name in dir(magics):
            parser = getattr(getattr(magics, name), "parser", None)
            if parser is None:
                continue
            help_text = " ".join(parser.format_help().split())
            for action in parser._actions:
                if action.option_strings and action.default not in (None, False, ""):
                    assert f"(default: {action.default})" in help_text, (name, action.dest)


def _tree(root, files):
    root.mkdir()
    for i in range(files):
        (root / f"f{i:02}.txt").write_text("x" * (i + 1))
    (root / "sub").mkdir()
    (root / "sub" / "one.bin").write_bytes(b"1")


def test_dry_run_prints_counts_bytes_and_the_first_20_actions(shell, client, tmp_path, capsys):
    _tree(tmp_path / "data", files=24)
    assert shell.run_cell("%drive_sync push data d --dry-run").error_in_exec is None
    out = capsys.readouterr().out
    lines = out[out.index("Plan:") :].strip().splitlines()  # after the progress line
    assert lines[0] == "Plan: create 1 folder, upload 25 files (301 B)."
    actions = lines[1:21]
    assert all(line.split()[0] in ("mkdir", "upload") for line in actions)
    assert lines[21] == "… and 6 more"
    assert lines[22].startswith("would: uploaded 25")
    assert len(lines) == 23
    assert not client.exists("d")


def test_plan_summary_counts_each_action():
    report = SyncReport(dry_run=True, plan=[("upload", "a", 5), ("delete", "b", 7),
                                            ("replace", "c", 1), ("upload", "d", 0)])  # fmt: skip
    assert report.plan_summary()[0] == (
        "Plan: upload 2 files (5 B), replace 1 file (1 B), delete 1 file (7 B)."
    )
    assert SyncReport(dry_run=True).plan_summary() == ["Plan: nothing to do."]


@pytest.mark.parametrize("push", ["", " --push"])
def test_a_failure_is_shown_once(shell, mounted, capsys, push):
    """Not in the panel, on stderr and in the UsageError: once, in the UsageError."""
    handle, mount = mounted
    (mount / "late.txt").write_text("not synced for 30 s")
    if push:  # Drive is full: the push through the API fails
        handle.settings.update({"quota_bytes": 1})
    capsys.readouterr()
    error = shell.run_cell(f"%drive_flush --timeout 0.3s{push}").error_in_exec
    assert isinstance(error, UsageError)
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert "\n" not in str(error) and "late.txt" in str(error)
    assert text.count("late.txt") == 1, text
    assert "MountView" not in text and "flush(" not in text


def test_counts_are_plural_only_when_more_than_one(shell, client, capsys, monkeypatch):
    client.upload(b"x" * 10, "one/a.txt")
    asked = []
    monkeypatch.setattr(builtins, "input", lambda prompt: asked.append(prompt) or "n")
    assert shell.run_cell("%drive_purge one").error_in_exec is None
    assert asked == ["Delete permanently drive:one: 1 file in 1 folder, 10 B? [y/N] "]
    assert shell.run_cell("%drive_purge one --yes").error_in_exec is None
    assert "Deleted 1 file and 1 folder permanently" in capsys.readouterr().out


def test_checkpointed_interrupt_is_one_line(shell, mounted, capsys):
    shell.user_ns.update(os=os, signal=signal, losses=[])
    capsys.readouterr()
    error = shell.run_cell(
        "%%checkpointed intr --save losses --every 100\n"
        "for step in ckpt.range(8):\n"
        "    if step == 2:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    losses.append(step)\n"
    ).error_in_exec
    assert isinstance(error, KeyboardInterrupt)
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert "interrupted at step 3; checkpoint of step 3 confirmed" in text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
