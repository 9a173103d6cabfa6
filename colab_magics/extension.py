"""What loading the extension registers on a shell, and how unloading removes it."""

from __future__ import annotations

_LOADED_ATTR = "_colab_magics_loaded"


def load(ipython) -> None:
    """Register the magics on ``ipython``; loading twice is harmless."""
    if getattr(ipython, _LOADED_ATTR, False):
        return
    from colab_magics.magics import ALL_MAGICS

    for magics in ALL_MAGICS:
        ipython.register_magics(magics)
    setattr(ipython, _LOADED_ATTR, True)


def unload(ipython) -> None:
    """Remove what :func:`load` registered."""
    if not getattr(ipython, _LOADED_ATTR, False):
        return
    from colab_magics.background import stop_watches
    from colab_magics.magics import ALL_MAGICS

    stop_watches(flush=True)
    registry = ipython.magics_manager.magics
    for magics in ALL_MAGICS:
        for kind, names in magics.magics.items():
            for name in names:
                registry[kind].pop(name, None)
    setattr(ipython, _LOADED_ATTR, False)
