"""A notebook open in JupyterLab, as a person uses it: open, Run menu, read what is drawn."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page

from tests.browser.lab_server import JupyterLab

PANEL = ".colab-magics-progress"
DANGER = "progress-bar-danger"

# One panel as the browser draws it: the FloatProgress bar's width is its value in percent,
# bar_style is a class on the bar, and the three HTML widgets are title, status and messages.
_READ_PANEL = """(title) => {
  const panel = [...document.querySelectorAll('.colab-magics-progress')].find(
    (p) => p.querySelector('.widget-html-content')?.textContent.trim() === title);
  if (!panel) return null;
  const bar = panel.querySelector('.progress-bar');
  const [, status, message] = panel.querySelectorAll('.widget-html-content');
  const error = message ? message.querySelector('span') : null;
  return {
    value: bar ? parseFloat(bar.style.width) : null,
    bar_classes: bar ? [...bar.classList] : [],
    status: status ? status.textContent : '',
    message: message ? message.textContent : '',
    error_color: error ? getComputedStyle(error).color : null,
  };
}"""

# True once every code cell of the open notebook has an execution count (none queued or running).
_ALL_RAN = """() => {
  const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')];
  return prompts.length > 0 && prompts.every((p) => /^\\[\\d+\\]:$/.test(p.textContent.trim()));
}"""


@dataclasses.dataclass(frozen=True)
class PanelView:
    """What a person sees of one progress panel."""

    value: float | None
    bar_classes: list[str]
    status: str
    message: str
    error_color: str | None

    @property
    def running(self) -> bool:
        return "progress-bar-info" in self.bar_classes

    @property
    def red(self) -> bool:
        return DANGER in self.bar_classes

    @property
    def done(self) -> bool:
        return "progress-bar-success" in self.bar_classes

    def step(self) -> tuple[int, int] | None:
        found = re.search(r"\bstep (\d+)/(\d+)", self.status)
        return (int(found[1]), int(found[2])) if found else None

    def confirmed(self) -> int | None:
        found = re.search(r"confirmed step (\d+)", self.status)
        return int(found[1]) if found else None


class NotebookPage:
    def __init__(self, page: Page, lab: JupyterLab) -> None:
        self.page = page
        self.lab = lab

    def open(self, name: str, timeout: float = 60) -> None:
        """Open ``name`` alone (``reset``: no earlier tab comes back) and wait for its kernel."""
        self.page.goto(self.lab.url(f"lab/tree/{name}?token={self.lab.token}&reset"))
        # The status bar's "Python 3 (ipykernel) | Idle": the toolbar's indicator says idle
        # before any kernel exists, and cells run then are dropped.
        kernel_idle = self.page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
        kernel_idle.wait_for(timeout=timeout * 1000)
        if self.page.locator("#jp-left-stack").is_visible():
            self.page.keyboard.press("Control+b")  # the file browser away: wider cells
            self.page.locator("#jp-left-stack").wait_for(state="hidden")

    def run_all(self) -> None:
        """Run > Run All Cells, through the menu bar."""
        self.page.locator(".jp-NotebookPanel .jp-Notebook").click()
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

    def wait_all_ran(self, timeout: float) -> None:
        self.page.wait_for_function(_ALL_RAN, timeout=timeout * 1000)

    def panel(self, title: str) -> PanelView | None:
        seen = self.page.evaluate(_READ_PANEL, title)
        return PanelView(**seen) if seen is not None else None

    def wait_panel(
        self, title: str, what: str, until: Callable[[PanelView], bool], timeout: float
    ) -> PanelView:
        """Poll the panel titled ``title`` until ``until(view)``; an AssertionError says ``what``
        was awaited and what was last seen."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.panel(title)
            if seen is not None and until(seen):
                return seen
            time.sleep(0.1)
        raise AssertionError(f"{title!r}: no {what} within {timeout:.0f} s; last seen: {seen}")

    def screenshot_cell(self, title: str, path: Path) -> Path:
        """The cell holding the panel, from its code down to the panel's bottom edge."""
        panel = self.page.locator(PANEL, has_text=title)
        cell = self.page.locator(".jp-Cell", has=panel)
        cell.evaluate("(cell) => cell.scrollIntoView({block: 'start'})")
        top, bottom = cell.bounding_box(), panel.bounding_box()
        assert top is not None and bottom is not None, f"{title!r}: the panel is not on screen"
        height = bottom["y"] + bottom["height"] + 2 - top["y"]
        clip = {"x": top["x"], "y": top["y"], "width": top["width"], "height": height}
        self.page.screenshot(path=path, clip=clip)
        return path
