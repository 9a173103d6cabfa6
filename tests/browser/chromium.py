"""Headless Chromium from Debian's package, driven by Playwright (whose own download cannot
work here: this machine reaches no browser download site)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Page, sync_playwright

CHROMIUM = os.environ.get("COLAB_MAGICS_CHROMIUM", "/usr/bin/chromium")
# Chromium's own background connections (updates, sync, field trials) are refused on a closed
# network, and a refused one can stall a page; these flags keep it to the pages it is sent to.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium_page(timeout_ms: float = 30_000) -> Iterator[Page]:
    """A page in a fresh browser (Playwright gives it an empty user-data-dir), closed after."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `./dev test` installs Debian's (apt-get install "
            "chromium); or point COLAB_MAGICS_CHROMIUM at another Chromium binary"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()
