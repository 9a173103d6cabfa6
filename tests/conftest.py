"""Fixtures shared by the whole suite: a real emulator on loopback and real clients for it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from colab_magics.drive.service import authorized_http, build_drive_service, token_credentials
from colab_magics.emulator import EmulatorHandle, start_emulator


@pytest.fixture
def emulator(tmp_path) -> Iterator[EmulatorHandle]:
    """A fresh emulator storing under the test's temporary folder, faults off."""
    handle = start_emulator(tmp_path / "drive")
    try:
        yield handle
    finally:
        handle.stop()


def make_service(handle: EmulatorHandle, *, token: str | None = None):
    """An unmodified google-api-python-client Drive v3 service pointed at ``handle``."""
    creds = token_credentials(token if token is not None else handle.token)
    return build_drive_service(handle.url, http=authorized_http(creds, timeout=30))


@pytest.fixture
def make_drive():
    """``make_drive(handle, token=None)``: a new Drive service for any emulator handle."""
    return make_service


@pytest.fixture
def drive(emulator):
    """A Drive v3 service object for the ``emulator`` fixture."""
    return make_service(emulator)


@pytest.fixture(autouse=True)
def _no_leaked_threads():
    """Fail a test that leaves non-daemon threads running (a server or syncer not stopped)."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    for t in leaked:
        t.join(timeout=5)
    leaked = [t.name for t in leaked if t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture
def shell():
    """A real IPython shell with the extension loaded (and unloaded afterwards)."""
    from IPython.testing.globalipapp import get_ipython, start_ipython

    ip = start_ipython() or get_ipython()  # the first call starts it, later ones return None
    ip.run_line_magic("load_ext", "colab_magics")
    try:
        yield ip
    finally:
        ip.run_line_magic("unload_ext", "colab_magics")
