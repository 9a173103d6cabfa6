"""Progress as an ipywidgets panel: a title, a bar, a status line, and errors in red.

Works with ipywidgets 7.7 (Colab's) and 8. Widget values are set from background threads;
the kernel's comm layer forwards them to the browser.
"""

from __future__ import annotations

import html
import sys

import ipywidgets as widgets
from IPython.display import display

from colab_magics.progress import DONE, Fields, Progress
from colab_magics.ui.display import Display, fraction, status_parts


class WidgetPanel(Display):
    """``[title] [=====     ] step 450/1000 · confirmed step 400 (12s ago) · ...``"""

    def __init__(self, progress: Progress) -> None:
        # Its own width, never shrunk: a squeezed title wraps mid-name ("checkpointed quota-").
        self.title = widgets.HTML(
            value=f"<b>{html.escape(progress.title)}</b>", layout=widgets.Layout(flex="0 0 auto")
        )
        self.bar = widgets.FloatProgress(
            value=0.0, min=0.0, max=1.0, layout=widgets.Layout(width="30%")
        )
        self.status = widgets.HTML(value="")
        self.message = widgets.HTML(value="")
        self.box = widgets.VBox(
            [widgets.HBox([self.title, self.bar, self.status]), self.message],
            layout=widgets.Layout(padding="2px"),
        )
        self.box.add_class("colab-magics-progress")
        self._printed_error: str | None = None
        super().__init__(progress)

    def show(self) -> None:
        display(self.box)

    def render(self, fields: Fields) -> None:
        done = fraction(fields)
        if done is not None:
            self.bar.value = done
        self.status.value = html.escape(" · ".join(status_parts(fields)))
        lines = []
        if fields.get("message"):
            lines.append(html.escape(fields["message"]))
        if fields.get("error"):
            lines.append(
                f'<span style="color:#c62828"><b>Error:</b> {html.escape(fields["error"])}</span>'
            )
        self.message.value = "<br>".join(lines)
        error = fields.get("error")
        if error and error != self._printed_error:
            # Also as plain text, once: it stays readable where widgets do not render.
            self._printed_error = error
            print(f"{self.progress.title}: {error}", file=sys.stderr)
        if self.failed(fields):
            self.bar.bar_style = "danger"
        elif fields.get("state") == DONE:
            self.bar.bar_style = "success"
            if done is None:
                self.bar.value = 1.0
        else:
            self.bar.bar_style = "info"
