"""The package's public surface: the functions the magics wrap, and its few dependencies."""

from __future__ import annotations

import subprocess
import sys

import colab_magics


def test_public_functions_are_the_ones_the_magics_call():
    from colab_magics.checkpoint.api import checkpointed
    from colab_magics.drive import connect
    from colab_magics.sync import sharded

    assert colab_magics.checkpointed is checkpointed
    assert colab_magics.connect is connect
    assert colab_magics.sharded is sharded


def test_core_layers_import_no_ui_library():
    code = (
        "import sys, colab_magics.checkpoint.api, colab_magics.sync, colab_magics.drive, "
        "colab_magics.emulator; "
        "print(sorted(m for m in ('IPython', 'ipywidgets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
