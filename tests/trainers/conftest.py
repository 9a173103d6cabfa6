"""A client of the test's emulator, for checking from the Drive side what a run left there."""

from __future__ import annotations

import pytest

from colab_magics.drive import connect


@pytest.fixture
def client(emulator):
    c = connect(url=emulator.url, token=emulator.token)
    yield c
    c.close()
