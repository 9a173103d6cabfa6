"""How every magic reads its line: whole option names only, no secret in any error.

argparse accepts an unambiguous prefix of an option unless ``allow_abbrev`` is off
(https://docs.python.org/3/library/argparse.html#allow-abbrev): ``--token`` was read as
``--token-file`` and the error printed the token.
"""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from colab_magics.connection import use_client
from colab_magics.magic_args import is_secret_option, redact_words

SECRET = "ya29.SECRET-token-value"


@pytest.fixture(autouse=True)
def _forget_client():
    previous = use_client(None)
    yield
    client = use_client(previous)
    if client is not None:
        client.close()


def _failed(shell, capsys, line):
    error = shell.run_cell(line).error_in_exec
    shown = capsys.readouterr()
    return error, str(error) + shown.out + shown.err


@pytest.mark.parametrize(
    "option",
    [f"--token {SECRET}", f"--token={SECRET}", f"--tok {SECRET}", f"--to {SECRET}",
     f"--token-fil {SECRET}", f"--api-key {SECRET}", f"--password={SECRET}", SECRET],
)  # fmt: skip
def test_a_token_on_the_connect_line_is_refused_and_never_shown(shell, capsys, option):
    error, shown = _failed(shell, capsys, f"%drive_connect --url http://127.0.0.1:9/ {option}")
    assert isinstance(error, UsageError)
    assert "unrecognized arguments" in str(error)
    assert SECRET not in shown
    assert "cannot read" not in shown  # not taken for --token-file


def test_a_token_file_that_cannot_be_read_is_not_named(shell, capsys):
    error, shown = _failed(shell, capsys, f"%drive_connect --url http://127.0.0.1:9/ "
                                          f"--token-file {SECRET}")  # fmt: skip
    assert isinstance(error, UsageError) and "--token-file: cannot read" in str(error)
    assert SECRET not in shown


def test_a_key_file_that_does_not_exist_is_not_named(shell, capsys, monkeypatch):
    monkeypatch.delenv("COLAB_MAGICS_DRIVE_TOKEN", raising=False)
    error, shown = _failed(shell, capsys, f"%drive_connect --credentials /tmp/{SECRET}.json")
    assert isinstance(error, UsageError) and "No such file" in str(error)
    assert SECRET not in shown


@pytest.mark.parametrize(
    ("line", "unknown"),
    [
        ("%drive_sync push a b --del", "--del"),
        ("%drive_sync push a b --dry", "--dry"),
        ("%drive_purge x --ye", "--ye"),
        ("%drive_flush --time 1s", "--time"),
        ("%drive_guard on --wa", "--wa"),
        ("%drive_quota --empty", "--empty"),
        ("%drive_connect --sco drive", "--sco"),
    ],
)
def test_no_magic_takes_a_prefix_of_an_option(shell, line, unknown):
    error = shell.run_cell(line).error_in_exec
    assert isinstance(error, UsageError)
    assert f"unrecognized arguments: {unknown}" in str(error)


def test_checkpointed_takes_no_prefix_either(shell):
    shell.user_ns.pop("ran", None)
    error = shell.run_cell("%%checkpointed run --sav x --fre\nran = True\n").error_in_exec
    assert isinstance(error, UsageError)
    assert "unrecognized arguments: --sav x --fre" in str(error)
    assert "ran" not in shell.user_ns


@pytest.mark.parametrize(
    "line",
    [f"%drive_sync push a b --token {SECRET}", f"%drive_sync push a b --auth={SECRET}",
     f"%drive_status --secret {SECRET}", f"%drive_purge x --yes --session-key {SECRET}"],
)  # fmt: skip
def test_the_value_after_a_secret_like_option_is_never_echoed(shell, capsys, line):
    error, shown = _failed(shell, capsys, line)
    assert isinstance(error, UsageError) and "unrecognized arguments" in str(error)
    assert SECRET not in shown


def test_words_after_an_ordinary_unknown_option_are_still_shown(shell):
    error = shell.run_cell("%drive_sync push a b --bogus 1").error_in_exec
    assert str(error) == "unrecognized arguments: --bogus 1"


@pytest.mark.parametrize(
    ("word", "secret"),
    [("--token", True), ("--tok", True), ("--api_key", True), ("--PASSWORD", True),
     ("--cred", True), ("--credentials", True), ("--auth-header", True), ("-t", False),
     ("--to", False), ("--keep", False), ("--every", False), ("value", False)],
)  # fmt: skip
def test_secret_like_options(word, secret):
    assert is_secret_option(word) is secret


def test_redacting_keeps_the_words_that_are_safe():
    words = ["--tok", "S1", "--x", "1", "--token=S2", "pos", "--pass"]
    assert redact_words(words) == ["--tok", "…", "--x", "1", "--token=…", "pos", "--pass"]
    assert redact_words(["a", "--b=c"], hide_values=True) == ["…", "--b=…"]


def test_a_credential_inside_the_url_is_never_shown(shell, capsys, emulator, tmp_path):
    token = tmp_path / "token"
    token.write_text(emulator.token)
    url = emulator.url.replace("http://", f"http://me:{SECRET}@") + f"?key={SECRET}x"
    error, shown = _failed(shell, capsys, f"%drive_connect --url '{url}' --token-file {token}")
    assert error is None
    assert "Using the Drive server at" in shown
    assert SECRET not in shown and emulator.token not in shown
    error, shown = _failed(shell, capsys, f"%drive_connect --url '{url}'")
    assert isinstance(error, UsageError) and "needs a token" in str(error)
    assert SECRET not in shown
