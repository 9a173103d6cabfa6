"""%drive_connect in a real shell: the emulator by URL, bad input, no token on display."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from colab_magics.connection import current_client, use_client


@pytest.fixture(autouse=True)
def _forget_client():
    previous = use_client(None)
    yield
    client = use_client(previous)
    if client is not None:
        client.close()


def test_connects_to_a_server_with_the_token_from_a_file(shell, emulator, tmp_path, capsys):
    token_file = tmp_path / "token"
    token_file.write_text(emulator.token + "\n")
    result = shell.run_cell(f"%drive_connect --url {emulator.url} --token-file {token_file}")
    assert result.error_in_exec is None
    out = capsys.readouterr().out
    assert f"Using the Drive server at {emulator.url}" in out
    assert emulator.token not in out
    client = current_client()
    client.upload(b"hello", "notes/hello.txt")
    assert client.stat("notes/hello.txt").size == 5


def test_the_token_can_come_from_the_environment(shell, emulator, monkeypatch):
    monkeypatch.setenv("COLAB_MAGICS_DRIVE_TOKEN", emulator.token)
    assert shell.run_cell(f"%drive_connect --url {emulator.url}").error_in_exec is None
    assert current_client().quota().usage == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--url http://127.0.0.1:9/", "needs a token"),
        ("--token-file /nonexistent/token --url http://127.0.0.1:9/", "cannot read"),
        ("--scope everything", "invalid choice: 'everything'"),
        ("--credentials /nonexistent/key.json", "No such file"),
    ],
)
def test_bad_input_is_one_line(shell, monkeypatch, line, message):
    monkeypatch.delenv("COLAB_MAGICS_DRIVE_TOKEN", raising=False)
    result = shell.run_cell(f"%drive_connect {line}")
    assert isinstance(result.error_in_exec, UsageError)
    assert message in str(result.error_in_exec) and "\n" not in str(result.error_in_exec)
