"""Progress as one updating text line, for terminals and logs."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from colab_magics.progress import RUNNING, Fields, Progress
from colab_magics.ui.display import Display, fraction, status_parts

BAR_WIDTH = 20
LOG_INTERVAL = 30.0
SEE_ABOVE = "(as above)"


def text_line(title: str, fields: Fields) -> str:
    """``title [#####.....] 45% step 450/1000 · ...`` with the error, if any, last."""
    pieces = [title]
    done = fraction(fields)
    if done is not None:
        filled = round(done * BAR_WIDTH)
        pieces.append(f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done * 100:3.0f}%")
    pieces.append(" · ".join(status_parts(fields)))
    if fields.get("message"):
        pieces.append(f"— {fields['message']}")
    if fields.get("error"):
        pieces.append(f"ERROR: {fields['error']}")
    return " ".join(p for p in pieces if p)


class TextLine(Display):
    """Redraws one line with ``\\r`` on a terminal; on a pipe (a log), prints a line when the
    words change and otherwise at most every :data:`LOG_INTERVAL` seconds, an error in full
    only the first time."""

    def __init__(self, progress: Progress, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._printed = ""
        self._printed_at = 0.0
        self._printed_error: str | None = None
        self._width = 0
        super().__init__(progress)

    def render(self, fields: Fields) -> None:
        if getattr(self.stream, "closed", False):
            return  # a background operation outlived its stream (a captured cell's output)
        if self.tty:
            line = text_line(self.progress.title, fields)
            pad = " " * max(0, self._width - len(line))
            self.stream.write(f"\r{line}{pad}")
            self._width = len(line)
        else:
            line = self._log_line(fields)
        self._printed = line
        self.stream.flush()

    def _log_line(self, fields: Fields) -> str:
        # A log keeps every line printed: an error goes in once, in full; later lines that
        # still carry the same error point back to it instead of repeating it at every step.
        error = fields.get("error")
        repeated = error is not None and error == self._printed_error
        line = text_line(
            self.progress.title, {**fields, "error": SEE_ABOVE} if repeated else fields
        )
        if line != self._printed and (
            _without_numbers(line) != _without_numbers(self._printed)
            or fields.get("state") != RUNNING
            or time.monotonic() - self._printed_at >= LOG_INTERVAL
        ):
            self.stream.write(line + "\n")
            self._printed_at = time.monotonic()
            self._printed_error = error
        elif not error:
            self._printed_error = None
        return line

    def finish(self) -> None:
        if self.tty and not getattr(self.stream, "closed", False):
            self.stream.write("\n")
            self.stream.flush()


def _without_numbers(line: str) -> str:
    # On a pipe a new line for every step would flood the log: print when the words change.
    return "".join(ch for ch in line if not ch.isdigit() and ch not in "#.")
