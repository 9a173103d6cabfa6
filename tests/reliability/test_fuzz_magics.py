"""Every magic the extension registers, fed random argument strings in a real shell.

The lines come from a grammar built out of each magic's own argument parser (its option names
and choices) plus values a user might type, quotes, unicode and junk. The shell is connected to
an emulator with a simulated mount, where a small tree exists. The only outcome allowed besides
success is a ``UsageError`` whose message is one line: any other exception fails the test.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from colab_magics import background
from colab_magics.connection import use_client
from colab_magics.drive import connect
from colab_magics.emulator import start_emulator
from colab_magics.magics import install_guard

EXAMPLES_PER_MAGIC = 80
CELL_BODY = "pass\n"

# What users type as values, by kind; an argument whose name is in HINTS mostly gets its kind.
NAMES = ("w", "n", "w,n", "model,opt", "model", "w, n", ",", "nope", "ckpt2", "print")
RUNS = ("run", "r-1", "demo.v2", "r_2", "ünï", "a" * 101)
DURATIONS = ("10m", "90s", "1h", "0s", "1", "3", "0", "-5m", "1e309", "nan", "inf", "10x")
PATHS = (
    "data", "data/a.txt", "data/", ".", "..", "datasets/d1", "datasets/d1/a.txt",
    "datasets/a.zip", "drive:datasets", "drive:", "nope", "nope/x", "a/../b", "a//b", "out",
    "out/sub", "ünïcødé", "模型/データ", "🙂", "it's", "mnt", "mnt/datasets/d1", "mnt/new",
    "mnt/datasets/d1/a.txt", "drive:mnt",
)  # fmt: skip
INTS = ("0", "1", "-3", "8", "2147483648", "99999999999999999999", "1.5", "x")
VALUES = NAMES + RUNS + DURATIONS + PATHS + INTS + ("http://127.0.0.1:9/", "''", '""', 'say "hi"')
HINTS = {
    "save": NAMES, "name": RUNS, "as_name": NAMES, "every": DURATIONS, "lifetime": DURATIONS,
    "margin": DURATIONS, "timeout": DURATIONS, "url": ("http://127.0.0.1:9/", "nope"),
}  # fmt: skip
QUOTES = ('"', "'")
# Any character a notebook line can hold: no line breaks, no lone surrogates. No word of it
# starts with "/" or "~", so no junk names a folder outside the test's own.
JUNK = st.text(
    st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=8,
).filter(lambda s: not any(piece.startswith(("/", "~")) for piece in s.split()))


@dataclasses.dataclass(frozen=True)
class Magic:
    kind: str
    name: str
    call: Callable[..., Any]
    positionals: tuple[argparse.Action, ...]
    optionals: tuple[argparse.Action, ...]


def registered_magics(shell) -> list[Magic]:
    """The magics the extension put on ``shell``, with the arguments of each one's parser:
    a new magic or option is fuzzed without touching this file."""
    found = []
    for kind, table in shell.magics_manager.magics.items():
        for name, call in sorted(table.items()):
            owner = getattr(call, "__self__", None)
            if not type(owner).__module__.startswith("colab_magics."):
                continue
            parser = getattr(call, "parser", None)
            actions = parser._actions if parser is not None else []
            positionals = tuple(a for a in actions if not a.option_strings)
            optionals = tuple(a for a in actions if a.option_strings)
            found.append(Magic(kind, name, call, positionals, optionals))
    return found


def _value(action: argparse.Action) -> st.SearchStrategy[str]:
    """A value that fits ``action`` (its choices, an int, or its kind in HINTS)."""
    if action.choices:
        return st.sampled_from([str(c) for c in action.choices])
    if action.type is int:
        return st.sampled_from(INTS)
    return st.sampled_from(HINTS.get(action.dest, PATHS))


_MUTATIONS = ("none",) * 6 + ("junk", "replace", "quote", "unbalanced")


@st.composite
def argument_lines(draw: st.DrawFn, magic: Magic) -> str:
    """A line shaped like the magic's arguments (positionals, then options in any order and
    number, with fitting values), mutated in four cases out of ten: a junk token inserted, a
    token replaced by any value or junk, a token quoted, or a quote left open."""
    tokens = []
    for action in magic.positionals:
        counts = {"?": (0, 1, 1), "*": (0, 1, 2, 2, 2, 3), "+": (1, 2)}.get(action.nargs, (1,))
        tokens += [draw(_value(action)) for _ in range(draw(st.sampled_from(counts)))]
    if magic.optionals:
        for action in draw(st.lists(st.sampled_from(magic.optionals), max_size=4)):
            tokens.append(draw(st.sampled_from(action.option_strings)))
            if action.nargs != 0:
                tokens.append(draw(_value(action)))
    mutation = draw(st.sampled_from(_MUTATIONS))
    where = draw(st.integers(0, max(0, len(tokens) - 1)))
    if mutation == "junk" or (mutation != "none" and not tokens):
        tokens.insert(where, draw(JUNK))
    elif mutation == "replace":
        tokens[where] = draw(st.one_of(st.sampled_from(VALUES), JUNK))
    elif mutation in ("quote", "unbalanced"):
        quote = draw(st.sampled_from(QUOTES))
        tokens[where] = quote + tokens[where] + (quote if mutation == "quote" else "")
    return " ".join(tokens)


class _AnswersNo(io.TextIOBase):
    """A stdin on which every question gets "n": nothing can hang waiting for an answer."""

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:
        return "n\n"


def _seed(work: Path, client) -> None:
    """Local files to push, and a Drive tree to pull, extract, purge (again after a purge)."""
    for name, text in (("a.txt", "alpha"), ("b.txt", "beta")):
        (work / "data").mkdir(exist_ok=True)
        (work / "data" / name).write_text(text)
        if not client.exists(f"datasets/d1/{name}"):
            client.upload(text.encode(), f"datasets/d1/{name}")
    if not client.exists("datasets/a.zip"):
        with zipfile.ZipFile(work / "a.zip", "w") as zf:
            zf.writestr("inside/x.txt", "x")
        client.upload(str(work / "a.zip"), "datasets/a.zip")


@pytest.fixture
def mounted(tmp_path, monkeypatch):
    """An emulator mirroring its Drive into ``mnt`` like Colab's mount (a short lag, so a
    flush waits a moment, not minutes); the working folder, deep enough that a junk
    ``../..`` still lands inside the test's own folder, holds the mount."""
    work = tmp_path / "a" / "b" / "c" / "d" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    for var, sub in (("COLAB_MAGICS_STAGING", "staging"), ("XDG_CACHE_HOME", "cache"),
                     ("XDG_DATA_HOME", "data-home"), ("HOME", "home")):  # fmt: skip
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setattr(sys, "stdin", _AnswersNo())
    handle = start_emulator(tmp_path / "drive", mount=work / "mnt", mount_lag=0.2)
    # A plain %drive_connect (no options) comes back to this emulator and its mount.
    monkeypatch.setenv("COLAB_MAGICS_DRIVE_URL", handle.url)
    monkeypatch.setenv("COLAB_MAGICS_DRIVE_TOKEN", handle.token)
    monkeypatch.setenv("COLAB_MAGICS_MOUNT", str(work / "mnt"))
    try:
        yield handle, work
    finally:
        handle.stop()


def test_every_magic_gives_success_or_a_one_line_usage_error(shell, mounted, capsys):
    emulator, work = mounted
    client = connect(url=emulator.url, token=emulator.token, mount=str(work / "mnt"))
    previous = use_client(client)
    _seed(work, client)
    model = torch.nn.Linear(2, 1)
    start_ns = {"w": [1, 2], "n": 3, "model": model, "opt": torch.optim.SGD(model.parameters())}
    shell.user_ns.update(start_ns)
    names_before = set(shell.user_ns)

    def reset() -> None:
        """Undo what one call may have changed: watches, the connection, the guard, names."""
        background.stop_watches(flush=False)
        current = use_client(client)
        if current is not client and current is not None:
            current.close()
        install_guard(shell)
        for name in set(shell.user_ns) - names_before:
            del shell.user_ns[name]
        shell.user_ns.update(start_ns)
        _seed(work, client)

    magics = registered_magics(shell)
    names = {m.name for m in magics}
    assert {"checkpointed", "drive_connect", "drive_sync", "drive_purge"} <= names, names
    try:
        for magic in magics:
            _fuzz(magic, reset, capsys)()
    finally:
        reset()
        use_client(previous)
        client.close()


def _fuzz(magic: Magic, reset: Callable[[], None], capsys) -> Callable[[], None]:
    """A hypothesis test calling ``magic`` with generated lines, ``reset()`` after each."""

    @settings(
        max_examples=EXAMPLES_PER_MAGIC,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(line=argument_lines(magic))
    def run_one(line: str) -> None:
        try:
            if magic.kind == "cell":
                magic.call(line, CELL_BODY)
            else:
                magic.call(line)
        except UsageError as exc:
            message = str(exc)
            assert message.strip(), f"%{magic.name} {line!r}: empty UsageError"
            assert "\n" not in message and "\r" not in message, (
                f"%{magic.name} {line!r}: the UsageError is not one line: {message!r}"
            )
        finally:
            reset()
            capsys.readouterr()  # keep the captured output small

    return run_one
