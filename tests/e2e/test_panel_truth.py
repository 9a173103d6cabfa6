"""The panel in a real (Colab-like) kernel tells the truth at every moment: a confirmation
shows while a long step still runs, a save given up by a second interrupt is red, and a
``--watch`` panel stays under the cell that started it."""

from __future__ import annotations

import threading
import time

LONG_STEP = """%%checkpointed slow --save w --every 1
import time
for step in ckpt.range(2):
    w += 1
    if step == 1:
        time.sleep(4)  # a step that takes minutes, shortened
"""


def test_a_confirmation_shows_while_a_long_step_still_runs(colab):
    cell = colab.run(LONG_STEP)
    assert cell.error is None, cell.error
    [shown] = cell.widgets_displayed()
    history = colab.panel_history(shown)
    confirmed_at = next(at for at, p in history if "confirmed step 1 " in p["text"])
    # Drive confirmed step 1 early in the 4 s step: it must show well before the cell ends.
    assert colab.idle_at(cell) - confirmed_at > 2.5
    assert colab.panel(shown)["bar_style"] == "success"


TRAIN = """%%checkpointed ctrlc --save w --every 3
import time
for step in ckpt.range(1000):
    w += 1
    print(step, flush=True)
    time.sleep(0.5)
"""


def test_a_second_interrupt_gives_up_the_save_and_the_panel_says_not_saved_in_red(colab):
    sent = threading.Event()

    def interrupt_twice(text: str) -> None:
        if not sent.is_set() and "5" in text.split():
            sent.set()
            colab.kernel.manager.interrupt_kernel()  # saves at the end of this step...
            time.sleep(0.15)
            colab.kernel.manager.interrupt_kernel()  # ...unless interrupted again: stop now

    cell = colab.run(TRAIN, on_stream=interrupt_twice)
    assert sent.is_set()
    assert cell.error is not None and cell.error["ename"] == "Interrupted"  # a KeyboardInterrupt
    assert cell.error["traceback"] == [
        "interrupted at step 5: not saved; checkpoint of step 3 confirmed"
    ]
    [shown] = cell.widgets_displayed()
    history = [p for _, p in colab.panel_history(shown)]
    final = colab.panel(shown)
    assert final["bar_style"] == "danger"
    assert "interrupted at step 5: not saved" in final["text"]
    assert "confirmed step 3 " in final["text"]
    assert all(p["bar_style"] != "success" for p in history)


def test_a_watch_panel_stays_under_the_cell_that_started_it(colab, tmp_path):
    src = tmp_path / "logs"
    src.mkdir()
    for i in range(40):
        (src / f"event{i:02}.log").write_bytes(b"x" * 2000)
    start = colab.run(f"%drive_sync push {src} logs --watch")
    assert start.error is None, start.error
    later = colab.run("import time; time.sleep(3)")  # the watch's first round ends meanwhile
    (src / "new.log").write_bytes(b"y")
    colab.drain(3)
    stop = colab.run("%drive_sync stop")
    assert stop.error is None, stop.error
    [shown] = start.widgets_displayed()
    assert later.widgets_displayed() == [] and stop.widgets_displayed() == []
    panel = colab.panel(shown)
    assert "41 files pushed" in panel["text"] and panel["bar_style"] == "success"
