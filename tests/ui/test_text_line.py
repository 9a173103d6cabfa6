"""The terminal rendering of a progress model."""

from __future__ import annotations

import io
import time

from colab_magics.progress import DONE, FAILED, Progress
from colab_magics.ui.text import TextLine, text_line


def test_line_shows_step_confirmation_upload_and_error():
    now = time.time()
    line = text_line(
        "checkpointed run1",
        {
            "state": "running",
            "step": 450,
            "total": 1000,
            "steps_per_second": 12.34,
            "confirmed_step": 400,
            "confirmed_time": now - 12,
            "bytes_done": 3_200_000,
            "bytes_total": 10_000_000,
            "rate": 50_000_000,
            "retries": 2,
            "error": "Drive storage quota exceeded",
        },
    )
    assert line.startswith("checkpointed run1 [#########...........]  45%")
    for piece in (
        "step 450/1000",
        "12.3 steps/s",
        "confirmed step 400 (12s ago)",
        "3.2 MB/10.0 MB at 50.0 MB/s",
        "2 retries",
        "ERROR: Drive storage quota exceeded",
    ):
        assert piece in line


class _Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_on_a_pipe_lines_are_printed_when_the_words_change_not_every_step():
    out = _Pipe()
    progress = Progress("checkpointed run1", run="run1", total=100)
    display = TextLine(progress, stream=out)
    assert out.getvalue() == ""  # nothing before the first update
    for step in range(1, 50):
        progress.update(step=step)
        time.sleep(0.002)
    progress.update(confirmed_step=40, confirmed_time=time.time())
    progress.update(state=DONE, step=100)
    display.close()
    lines = out.getvalue().splitlines()
    assert 2 <= len(lines) <= 5
    assert "confirmed step 40" in lines[-1] and "step 100/100" in lines[-1]


def test_a_failure_is_drawn_at_once_despite_throttling():
    out = _Pipe()
    progress = Progress("sync")
    TextLine(progress, stream=out)
    progress.update(files_done=1, files_total=3)
    progress.update(state=FAILED, error="quota exceeded")
    assert "ERROR: quota exceeded" in out.getvalue().splitlines()[-1]


def test_one_retry_reads_as_one():
    line = text_line("push", {"state": "running", "retries": 1})
    assert "1 retry" in line and "retries" not in line
