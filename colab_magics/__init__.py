"""colab_magics: training cells that survive the notebook runtime dying.

Load in IPython with ``%load_ext colab_magics``.
"""

from __future__ import annotations

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    """Register the extension's magics and hooks on ``ipython``."""
    from colab_magics import extension

    extension.load(ipython)


def unload_ipython_extension(ipython) -> None:
    """Undo exactly what :func:`load_ipython_extension` did."""
    from colab_magics import extension

    extension.unload(ipython)
