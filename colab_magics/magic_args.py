"""Reading a magic's line: shell quoting, whole option names only, no secret in an error.

IPython's own ``parse_argstring`` splits with ``posix=False``, which keeps quotes inside the
words (``--to "Colab Notebooks"`` became a folder named ``"Colab``), and argparse accepts any
unambiguous prefix of an option (``--token`` was read as ``--token-file``). Every magic parses
through :func:`parse_line` instead.
"""

from __future__ import annotations

import argparse
import re
import shlex
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicHelpFormatter
from IPython.utils.text import DollarFormatter

HIDDEN = "…"
# Words that mark an option as one whose value may be a secret. An option is secret-like when
# its name contains one, or is the start of one (``--tok``, ``--pass``, ``--cred``).
SECRET_WORDS = ("token", "secret", "password", "passwd", "passphrase", "credential", "key",
                "auth", "bearer", "cookie", "session")  # fmt: skip
_OPTION = re.compile(r"^--?[A-Za-z]")


def is_secret_option(word: str) -> bool:
    """Whether ``word`` (``--token``, ``--api-key=…``) names an option that may take a secret."""
    if not _OPTION.match(word):
        return False
    name = word.lstrip("-").split("=", 1)[0].lower().replace("_", "-")
    return any(w in name for w in SECRET_WORDS) or (
        len(name) >= 3 and any(w.startswith(name) for w in SECRET_WORDS)
    )


def redact_words(words: Sequence[str], *, hide_values: bool = False) -> list[str]:
    """``words`` safe to show: the value of a secret-like option (``--token X``,
    ``--token=X``) becomes ``…``; with ``hide_values``, every word that is not an option does."""
    shown: list[str] = []
    after_secret = False
    for word in words:
        if _OPTION.match(word):
            name, eq, _ = word.partition("=")
            secret = is_secret_option(name)
            shown.append(f"{name}={HIDDEN}" if eq and (secret or hide_values) else word)
            after_secret = secret and not eq
        else:
            shown.append(HIDDEN if after_secret or hide_values else word)
            after_secret = False
    return shown


def redact_text(text: str, secrets: Sequence[str | None]) -> str:
    """``text`` with every occurrence of a non-empty secret in ``secrets`` replaced by ``…``."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = re.sub(rf"(?<![\w-]){re.escape(secret)}(?![\w-])", HIDDEN, text)
    return text


class DefaultsHelp(MagicHelpFormatter):
    """``%magic?`` help that states every option's default (unless its help already does)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            not action.option_strings
            or "default" in text
            or action.default in (None, False, argparse.SUPPRESS)
        ):
            return text
        return f"{text} (default: %(default)s)"


def url_secrets(url: str | None) -> list[str]:
    """What in ``url`` may be a credential: the password in ``user:password@`` and the
    values of its query (``?key=…``)."""
    if not url:
        return []
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return []
    values = [v for _, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=False)]
    return [password, *values] if password else values


def _no_abbreviations(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # MagicArgumentParser's constructor takes no allow_abbrev; argparse reads the attribute
    # at parse time.
    parser.allow_abbrev = False
    return parser


def parse_line(magic: Callable[..., Any], line: str, *, hide_values: bool = False) -> Any:
    """``magic``'s arguments from ``line``, split as a POSIX shell would (quotes group words
    and are removed), option names matched whole. Every mistake is a one-line
    :class:`UsageError` that shows no secret-like option's value (with ``hide_values``, no
    value at all: for a magic whose stray words may be a token)."""
    parser = _no_abbreviations(magic.parser)
    try:
        words = shlex.split(line)
    except ValueError as exc:  # "No closing quotation": the line itself is not shown
        raise UsageError(f"{parser.prog}: {exc}") from None
    try:
        args, unknown = parser.parse_known_args(words)
    except UsageError as exc:  # a known option's mistake: the value of a secret one is hidden
        message = redact_text(str(exc), _secret_values(words))
        raise UsageError(" ".join(message.split())) from None
    except SystemExit as exc:  # argparse exits on a few mistakes of its own
        raise UsageError(f"{parser.prog}: {exc}") from None
    if unknown:
        shown = " ".join(redact_words(unknown, hide_values=hide_values))
        hint = " (values of options like these are not shown)" if HIDDEN in shown else ""
        raise UsageError(f"unrecognized arguments: {shown}{hint}")
    return args


def _secret_values(words: Sequence[str]) -> list[str]:
    """The values :func:`redact_words` would hide, with those inside ``--opt=value``."""
    values = []
    for word, shown in zip(words, redact_words(words), strict=True):
        if word != shown:
            values.append(word.partition("=")[2] if _OPTION.match(word) else word)
    return values


def expand_unless_deleting(shell: Any, line: str) -> str:
    """``line`` with ``$var``/``{expr}`` expanded as IPython would, except where it deletes:
    a line with ``--delete`` is taken exactly as written, and a variable that brings in
    ``--delete`` is refused, so no variable can redirect or start a deletion."""
    if "--delete" in _words(line):
        return line
    try:
        expanded = DollarFormatter().vformat(line, args=[], kwargs=shell.user_ns)
    except Exception:  # as IPython does: what does not evaluate stays as written
        return line
    if "--delete" in _words(expanded):
        raise UsageError("--delete must be written in the line itself, not come from a variable")
    return expanded


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()
