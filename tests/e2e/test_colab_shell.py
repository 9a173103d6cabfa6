"""The extension in a real kernel whose shell subclasses ``ZMQInteractiveShell``, as Colab's.

The kernel (``colab_kernel.py``) is started from a kernelspec in a temporary folder through
jupyter_client; its shell also does what Colab's ``google/colab/_shell.py`` does to cell
magics: an empty body arrives as ``' '``.
"""

from __future__ import annotations

from colab_magics.drive import connect
from tests.e2e.kernel_messages import KernelSession


def one_panel(session: KernelSession, cell) -> dict:
    """The panel the cell displayed: a widget, opened and displayed under this cell."""
    opened, [shown] = cell.widgets_opened(), cell.widgets_displayed()
    assert shown in opened, "the panel's widget was not opened as a jupyter.widget comm"
    return session.panel(shown)


def test_the_checkpointed_panel_is_a_widget(colab):
    cell = colab.run(
        "%%checkpointed run1 --save w --every 2\nfor step in ckpt.range(4):\n    w += 1\n"
    )
    assert cell.error is None, cell.error
    panel = one_panel(colab, cell)
    assert "checkpointed run1" in panel["text"] and "confirmed step 4" in panel["text"]
    assert panel["bar_style"] == "success"
    assert "checkpointed run1 [" not in cell.text()  # no text line instead


def test_the_drive_sync_panel_is_a_widget(colab, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        (data / f"f{i}.bin").write_bytes(bytes([i]) * 1000)
    cell = colab.run(f"%drive_sync push {data} backup")
    assert cell.error is None, cell.error
    panel = one_panel(colab, cell)
    assert "drive_sync push" in panel["text"] and panel["bar_style"] == "success"


def test_an_empty_checkpointed_cell_is_refused_as_in_jupyter_and_writes_nothing(colab, emulator):
    # Colab hands the magic ' ' where IPython would refuse the empty body itself.
    cell = colab.run("%%checkpointed run2 --save w")
    assert cell.error is None  # a UsageError is one line on stderr, no traceback
    [line] = cell.text("stderr").splitlines()
    assert line.startswith("UsageError: %%checkpointed run2: the cell is empty")
    with connect(url=emulator.url, token=emulator.token) as client:
        assert not client.exists("colab_magics/checkpoints/run2")
