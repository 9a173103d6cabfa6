"""The progress panel as a person sees it: JupyterLab runs demo.ipynb, headless Chromium reads it.

The kernels reach this test's Drive emulator through ``COLAB_MAGICS_DRIVE_URL`` and
``COLAB_MAGICS_DRIVE_TOKEN`` in the server's environment, as the demo runner's kernels do.
Screenshots and JupyterLab's log go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from colab_magics.demo import notebook as nb
from colab_magics.demo.runner import DEFAULT_NOTEBOOK
from tests.browser.chromium import chromium_page
from tests.browser.lab_server import JupyterLab
from tests.browser.notebook_page import NotebookPage

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
DEMO_PANEL = "checkpointed demo"
DEMO_STEPS = 328  # demo.ipynb's STEPS: 8 epochs of 41 batches
QUOTA_PANEL = "checkpointed quota-full"
QUOTA_STEPS = 80
# A run long enough (~8 s) for Drive to fill up while it trains; NumPy only, so it starts fast.
QUOTA_CELLS = [
    "%load_ext colab_magics\n%drive_connect",
    "import time\n\nimport numpy as np\n\nweights = np.zeros(4096)",
    "%%checkpointed quota-full --save weights --every 5\n"
    f"for step in ckpt.range({QUOTA_STEPS}):\n"
    "    weights += 1.0\n"
    "    time.sleep(0.1)",
]


def _notebook(cells: list[str]) -> dict[str, Any]:
    code = [
        {"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None}
        for c in cells
    ]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return {"nbformat": 4, "nbformat_minor": 4, "metadata": {"kernelspec": kernel}, "cells": code}


@contextmanager
def _evidence(page: Page, log: Path) -> Iterator[None]:
    """On failure, a screenshot of the page and the server log's path join the message."""
    try:
        yield
    except Exception as exc:
        shot: object = ARTIFACTS / "failure.png"
        try:
            page.screenshot(path=shot)
        except Exception as why:  # the browser may be what failed
            shot = f"none ({why})"
        raise AssertionError(f"{exc}\nscreenshot: {shot}\nJupyterLab's log: {log}") from exc


@pytest.mark.slow
def test_panel_advances_confirms_and_turns_red_in_jupyterlab(emulator, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"screenshots and JupyterLab's log: {ARTIFACTS}")
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(DEFAULT_NOTEBOOK, root / "demo.ipynb")
    nb.save(_notebook(QUOTA_CELLS), root / "quota.ipynb")
    env = {
        "COLAB_MAGICS_DRIVE_URL": emulator.url,
        "COLAB_MAGICS_DRIVE_TOKEN": emulator.token,
        "COLAB_MAGICS_STAGING": str(tmp_path / "staging"),
    }
    with (
        JupyterLab(root, tmp_path / "home", ARTIFACTS / "jupyterlab.log", env) as lab,
        chromium_page() as page,
        _evidence(page, lab.log),
    ):
        notebook = NotebookPage(page, lab)
        _demo_panel_advances_and_confirms(notebook)
        _panel_turns_red_when_drive_is_full(notebook, emulator)


def _demo_panel_advances_and_confirms(notebook: NotebookPage) -> None:
    notebook.open("demo.ipynb")
    notebook.run_all()
    first = notebook.wait_panel(
        DEMO_PANEL,
        "bar part-way while training",
        lambda v: v.running and 0 < (v.value or 0) < 100 and v.step() is not None,
        timeout=120,
    )
    # Past a third of the way too, so the screenshot below shows a bar with some length.
    second = notebook.wait_panel(
        DEMO_PANEL,
        "further bar with a confirmed checkpoint",
        lambda v: v.running and (v.value or 0) > max(first.value, 33) and v.confirmed() is not None,
        timeout=60,
    )
    assert second.step()[0] > first.step()[0], (first, second)  # the words follow the bar
    assert second.step()[1] == DEMO_STEPS
    assert not second.red and second.error_color is None
    notebook.screenshot_cell(DEMO_PANEL, ARTIFACTS / "panel-running.png")

    done = notebook.wait_panel(DEMO_PANEL, "green bar", lambda v: v.done, timeout=120)
    assert done.value == 100
    assert done.step() == (DEMO_STEPS, DEMO_STEPS)
    assert done.confirmed() == DEMO_STEPS, done  # the final checkpoint, confirmed by Drive
    assert not done.red and done.error_color is None
    notebook.wait_all_ran(timeout=60)  # and the cells after training ran without error
    notebook.screenshot_cell(DEMO_PANEL, ARTIFACTS / "panel-done.png")


def _panel_turns_red_when_drive_is_full(notebook: NotebookPage, emulator) -> None:
    notebook.open("quota.ipynb")
    notebook.run_all()
    before = notebook.wait_panel(
        QUOTA_PANEL,
        "confirmed checkpoint",
        lambda v: v.running and v.confirmed() is not None,
        timeout=90,
    )
    emulator.settings.update({"quota_bytes": 1})  # Drive is full: every upload is refused

    red = notebook.wait_panel(
        QUOTA_PANEL, "red error line", lambda v: v.red and v.error_color is not None, timeout=60
    )
    assert "Error:" in red.message and "drive is full" in red.message.lower(), red
    assert red.error_color == "rgb(198, 40, 40)"  # panel.py's red
    step, total = red.step()
    assert step < total, red  # red while training goes on
    notebook.screenshot_cell(QUOTA_PANEL, ARTIFACTS / "panel-error.png")

    final = notebook.wait_panel(
        QUOTA_PANEL,
        "final failed state",
        lambda v: "the last checkpoint failed" in v.message,
        timeout=60,
    )
    assert final.red and final.step() == (QUOTA_STEPS, QUOTA_STEPS), final
    assert final.confirmed() is not None and final.confirmed() >= before.confirmed()
    assert f"the newest confirmed one is step {final.confirmed()}" in final.message
    notebook.wait_all_ran(timeout=30)
    notebook.screenshot_cell(QUOTA_PANEL, ARTIFACTS / "panel-failed.png")
