"""A real client on the emulator, with snapshots staged under the test's own folder."""

from __future__ import annotations

import pytest

from colab_magics.drive import connect


@pytest.fixture
def client(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("COLAB_MAGICS_STAGING", str(tmp_path / "staging"))
    c = connect(url=emulator.url, token=emulator.token)
    yield c
    c.close()
