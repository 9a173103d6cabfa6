"""What loading the extension registers on a shell, and how unloading removes it."""

from __future__ import annotations

_LOADED_ATTR = "_colab_magics_loaded"


def load(ipython) -> None:
    """Register the magics and the Drive guard on ``ipython``; loading twice is harmless."""
    if getattr(ipython, _LOADED_ATTR, False):
        return
    from colab_magics.magics import ALL_MAGICS, install_guard

    for magics in ALL_MAGICS:
        ipython.register_magics(magics)
    install_guard(ipython)
    setattr(ipython, _LOADED_ATTR, True)


def unload(ipython) -> None:
    """Remove what :func:`load` registered, after pushing what background watches still hold."""
    if not getattr(ipython, _LOADED_ATTR, False):
        return
    from colab_magics.background import stop_watches
    from colab_magics.magics import ALL_MAGICS
    from colab_magics.sync.guard import uninstall

    stop_watches(flush=True)
    uninstall(ipython)
    registry = ipython.magics_manager.magics
    for magics in ALL_MAGICS:
        for kind, names in magics.magics.items():
            for name in names:
                registry[kind].pop(name, None)
    setattr(ipython, _LOADED_ATTR, False)
