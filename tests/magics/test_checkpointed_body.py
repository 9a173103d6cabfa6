"""The body of %%checkpointed runs through the shell's whole path, as a plain cell does."""

from __future__ import annotations

import ast
import re

import pytest

from colab_magics.connection import use_client
from colab_magics.drive import connect


@pytest.fixture
def client(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("COLAB_MAGICS_STAGING", str(tmp_path / "staging"))
    c = connect(url=emulator.url, token=emulator.token)
    previous = use_client(c)
    yield c
    use_client(previous)
    c.close()


class Recorder(ast.NodeTransformer):
    """An AST transformer that notes every module it is given (as a guard would see it)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def visit_Module(self, node: ast.Module) -> ast.Module:
        self.seen.append(ast.unparse(node))
        return node


def test_the_body_meets_the_shells_ast_transformers_and_keeps_magics_and_shell(shell, client):
    recorder = Recorder()
    shell.ast_transformers.append(recorder)
    shell.user_ns.update(w=[0])
    try:
        result = shell.run_cell(
            "%%checkpointed body1 --save w\n"
            "%env COLAB_MAGICS_BODY_TEST=yes\n"
            "echoed = !echo from-the-shell\n"
            "for step in ckpt.range(2):\n"
            "    w[0] += 1\n"
        )
    finally:
        shell.ast_transformers.remove(recorder)
    assert result.error_in_exec is None, result.error_in_exec
    # The body as code (not as the string literal the outer cell passes to the magic).
    assert any("for step in ckpt.range(2):\n" in source for source in recorder.seen)
    assert shell.user_ns["echoed"] == ["from-the-shell"]
    assert shell.user_ns["w"] == [2]


def test_a_traceback_points_at_the_cells_own_line(shell, client, capsys):
    shell.user_ns.update(w=[0])
    shell.run_cell(
        "%%checkpointed body2 --save w\n"
        "for step in ckpt.range(1):\n"
        "    w[0] += 1\n"
        "raise ValueError('on line four')\n"
    )
    out = capsys.readouterr()
    text = out.out + out.err  # the traceback IPython showed, lines as the user reads them
    assert "ValueError" in text and "on line four" in text
    assert re.search(r"----> +4 raise ValueError\('on line four'\)", _plain(text))


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
