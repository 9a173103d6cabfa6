"""Bad input to %%checkpointed: one-line UsageError, and the cell body never runs."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "the following arguments are required: name"),
        ("run --bogus 1", "unrecognized arguments: --bogus 1"),
        ("run extra", "unrecognized arguments: extra"),
        ("'bad name'", "is not a run name"),
        ("run --every 10x", "'10x' is not a duration"),
        ("run --every 0", "--every needs at least 1 step"),
        ("run --lifetime forever", "'forever' is not a duration"),
        ("run --lifetime 5m --margin 10m", "--lifetime 5m is not longer than --margin 10m"),
        ("run --lifetime 10m", "--lifetime 10m is not longer than --margin 10m"),
        ("run --keep 0", "--keep must be at least 1"),
        ("run --keep many", "argument --keep: invalid int value"),
        ("run --save not_defined_anywhere", "'not_defined_anywhere', which is not defined"),
        ("run --save gen", "'gen' (generator) cannot be checkpointed"),
        ("run --to ../up", "--to: '..' is not allowed in a Drive path"),
        ("run --to drive:", "is My Drive itself"),
        ("run --as 1x", "--as '1x' is not a variable name"),
        ('run --save "unclosed', "No closing quotation"),
    ],
)
def test_bad_input_is_one_usage_error_before_the_cell_runs(shell, capsys, line, message):
    shell.user_ns["gen"] = (i for i in range(3))
    shell.user_ns.pop("ran", None)
    result = shell.run_cell(f"%%checkpointed {line}\nran = True\n")
    assert isinstance(result.error_in_exec, UsageError)
    assert message in str(result.error_in_exec)
    assert "\n" not in str(result.error_in_exec)
    assert "ran" not in shell.user_ns
    assert "Traceback" not in capsys.readouterr().out


def test_two_range_loops_are_refused_before_training(shell):
    shell.user_ns.pop("ran", None)
    result = shell.run_cell(
        "%%checkpointed run\nran = True\n"
        "for i in ckpt.range(3): pass\nfor j in ckpt.range(3): pass\n"
    )
    assert isinstance(result.error_in_exec, UsageError)
    assert "more than one ckpt.range() loop" in str(result.error_in_exec)
    assert "ran" not in shell.user_ns


def test_help_lists_every_option(shell, capsys):
    shell.run_cell("%%checkpointed?\n")
    shown = capsys.readouterr().out
    for option in (
        "--save",
        "--every",
        "--keep",
        "--to",
        "--lifetime",
        "--margin",
        "--as",
        "--fresh",
    ):
        assert option in shown


def test_unload_removes_the_magics(shell):
    assert "checkpointed" in shell.magics_manager.magics["cell"]
    shell.run_line_magic("unload_ext", "colab_magics")
    try:
        assert "checkpointed" not in shell.magics_manager.magics["cell"]
    finally:
        shell.run_line_magic("load_ext", "colab_magics")
