"""colab_magics: training cells that survive the notebook runtime dying.

Load in IPython with ``%load_ext colab_magics``.
"""

from __future__ import annotations

from typing import Any

from colab_magics.version import __version__

# The public functions every magic wraps, importable as colab_magics.<name> (loaded on first use).
_PUBLIC = {
    "checkpointed": "colab_magics.checkpoint.api",
    "connect": "colab_magics.drive",
    "sharded": "colab_magics.sync",
}
__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'colab_magics' has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    """Register the extension's magics and hooks on ``ipython``."""
    from colab_magics import extension

    extension.load(ipython)


def unload_ipython_extension(ipython) -> None:
    """Undo exactly what :func:`load_ipython_extension` did."""
    from colab_magics import extension

    extension.unload(ipython)
