"""What a rendering shows over time: coalesced bursts, a trailing draw, a ticking age."""

from __future__ import annotations

import threading
import time
from typing import Any

from colab_magics.progress import DONE, Progress
from colab_magics.ui.display import MIN_INTERVAL, Display


class Recorder(Display):
    """A rendering that keeps every state it was asked to draw, and from which thread."""

    def __init__(self, progress: Progress) -> None:
        self.drawn: list[dict[str, Any]] = []
        self.threads: list[str] = []
        super().__init__(progress)

    def render(self, fields: dict[str, Any]) -> None:
        self.drawn.append(fields)
        self.threads.append(threading.current_thread().name)


def wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_burst_faster_than_the_throttle_ends_drawn_in_its_last_state():
    progress = Progress("burst")
    display = Recorder(progress)
    try:
        for step in range(1, 51):
            progress.update(step=step)  # 50 updates in far less than MIN_INTERVAL
        assert len(display.drawn) < 50  # throttled...
        # ...but the last state is drawn soon, although no further update comes.
        assert wait_until(lambda: display.drawn[-1]["step"] == 50, timeout=2 * MIN_INTERVAL + 0.2)
    finally:
        display.close()


def test_an_update_right_after_a_draw_is_drawn_without_a_next_update():
    # A confirmation that lands just after a step's draw, in a step that takes minutes.
    progress = Progress("checkpointed run", run="run", total=10)
    display = Recorder(progress)
    try:
        progress.update(step=3)
        progress.update(confirmed_step=3, confirmed_time=time.time())
        assert wait_until(lambda: display.drawn[-1].get("confirmed_step") == 3, timeout=0.5)
    finally:
        display.close()


def test_the_age_of_the_confirmed_step_keeps_counting_between_updates():
    progress = Progress("checkpointed run", run="run", total=10)
    display = Recorder(progress)
    try:
        progress.update(step=3, confirmed_step=3, confirmed_time=time.time() - 5)
        first = len(display.drawn)
        assert wait_until(lambda: len(display.drawn) > first, timeout=3)
        assert display.drawn[-1] == display.drawn[first - 1]  # same state, drawn again
    finally:
        display.close()
    count = len(display.drawn)
    time.sleep(1.5)
    assert len(display.drawn) == count  # nothing is drawn after close


def test_progress_updated_before_the_display_is_drawn_at_once_by_the_subscriber():
    # A background operation reported before its panel existed: the panel appears now, in
    # the thread that makes it (the cell's), not later from the background thread.
    progress = Progress("watch")
    progress.update(phase="starting")
    display = Recorder(progress)
    try:
        assert display.shown and display.threads == [threading.current_thread().name]
    finally:
        display.close()


def test_nothing_is_shown_for_an_operation_that_never_reported():
    display = Recorder(Progress("refused"))
    display.close()
    assert not display.shown and display.drawn == []


def test_close_draws_the_final_state_once_and_stops_following():
    progress = Progress("done")
    display = Recorder(progress)
    progress.update(step=1)
    progress.update(step=2, state=DONE)
    display.close()
    assert display.drawn[-1]["step"] == 2
    progress.update(step=3)
    time.sleep(2 * MIN_INTERVAL)
    assert display.drawn[-1]["step"] == 2
