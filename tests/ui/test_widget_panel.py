"""The ipywidgets panel's state as a progress model changes (the browser check is separate)."""

from __future__ import annotations

import time

from colab_magics.progress import DONE, FAILED, Progress
from colab_magics.ui.panel import WidgetPanel


def test_panel_shows_step_confirmation_and_turns_green_when_done(capsys):
    progress = Progress("checkpointed run1", run="run1", total=10)
    panel = WidgetPanel(progress)
    assert not panel.shown
    progress.update(step=5, confirmed_step=4, confirmed_time=time.time() - 3)
    assert panel.shown
    assert panel.bar.value == 0.5
    assert "step 5/10" in panel.status.value and "confirmed step 4 (3s ago)" in panel.status.value
    progress.update(state=DONE, step=10)
    panel.close()
    assert panel.bar.value == 1.0 and panel.bar.bar_style == "success"


def test_an_error_turns_the_panel_red_and_is_printed_once(capsys):
    progress = Progress("checkpointed run1", run="run1", total=10)
    panel = WidgetPanel(progress)
    progress.update(step=1, error="Your Google Drive is full <torch.pt>")
    progress.update(step=2)
    assert panel.bar.bar_style == "danger"
    assert "Your Google Drive is full &lt;torch.pt&gt;" in panel.message.value  # escaped
    progress.update(state=FAILED)
    panel.close()
    assert capsys.readouterr().err.count("Your Google Drive is full") == 1
