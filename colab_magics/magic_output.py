"""What a magic shows while it runs and when it fails: one panel, each error said once.

A failure that ends a magic is reported as one :class:`UsageError` line. The panel still turns
red, but without a copy of that message (the panel would otherwise show it in red, print it to
stderr, and the UsageError would say it a third time). A failure the magic does not raise
(a checkpoint that could not be confirmed while the cell's own error ends it) stays in the
panel, the one place it is shown.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

from IPython.core.error import UsageError

from colab_magics import ui
from colab_magics.magic_args import redact_text
from colab_magics.progress import FAILED, Progress


def one_line(exc: BaseException | str) -> str:
    """A message on one line (a UsageError shows no more)."""
    text = exc if isinstance(exc, str) else str(exc)
    return " ".join(text.split()) or type(exc).__name__


class _HeldPanel:
    """Draws ``progress`` through a copy of it, holding back the final failure until the
    magic knows whether it raises that failure itself."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.view = Progress(progress.title)
        self._lock = threading.Lock()
        self._holding = False
        self._unsubscribe = progress.subscribe(self._forward)
        self.display = ui.show(self.view)

    def _forward(self, progress: Progress) -> None:
        fields = progress.snapshot()
        with self._lock:
            if fields.get("state") == FAILED:
                self._holding = True
            if self._holding:
                return
        self.view.update(**fields)

    def close(self, raised: str | None) -> None:
        """Draw the final state and stop; ``raised``: the message the magic's error shows."""
        self._unsubscribe()
        fields = self.progress.snapshot()
        if raised is not None:
            fields["state"] = FAILED
            for name in ("error", "message"):
                if fields.get(name) and _same(fields[name], raised):
                    fields[name] = None
        self.view.update(**fields)
        self.display.close()


def _same(shown: str, raised: str) -> bool:
    a, b = one_line(shown), one_line(raised)
    return a in b or b in a


@contextlib.contextmanager
def usage_errors(
    *known: type[BaseException], template: str = "{}", secrets: Sequence[str | None] = ()
) -> Iterator[None]:
    """An exception of a ``known`` type leaves the block as a one-line :class:`UsageError`:
    its message put into ``template``, every one of ``secrets`` in it hidden. Every magic
    turns errors into its one line here."""
    try:
        yield
    except UsageError:
        raise
    except known as exc:
        raise UsageError(redact_text(template.format(one_line(exc)), secrets)) from None


@contextlib.contextmanager
def panel(
    progress: Progress, *known: type[BaseException], template: str = "{}"
) -> Iterator[Progress]:
    """Show ``progress`` while the block runs; an exception of a ``known`` type leaves as a
    one-line :class:`UsageError` (see :func:`usage_errors`)."""
    held = _HeldPanel(progress)
    raised: str | None = None
    try:
        with usage_errors(*known, template=template):
            yield progress
    except UsageError as exc:
        raised = str(exc)
        raise
    finally:
        held.close(raised)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C that a magic handled (the state saved): shown as its one line, no traceback."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows what this returns instead of a traceback.
        return [str(self)]


def interrupted_line(step: int | None, confirmed: int | None) -> str:
    """The one line a handled Ctrl-C ends a checkpointed cell with: whether the step it
    stopped at was saved, and which checkpoint a rerun resumes from."""
    if step is None:
        where = "interrupted before the first step"
    elif confirmed == step:
        return f"interrupted at step {step}; checkpoint of step {step} confirmed"
    else:
        where = f"interrupted at step {step}: not saved"
    if confirmed is None:
        return f"{where}; no checkpoint confirmed"
    return f"{where}; checkpoint of step {confirmed} confirmed"
