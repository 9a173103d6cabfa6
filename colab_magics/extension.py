"""What loading the extension registers on a shell, and how unloading removes it."""

from __future__ import annotations

_LOADED_ATTR = "_colab_magics_loaded"


def load(ipython) -> None:
    """Register the settings, the magics and the Drive guard on ``ipython``; loading twice
    is harmless."""
    if getattr(ipython, _LOADED_ATTR, False):
        return
    import colab_magics.settings as settings
    from colab_magics.magics import ALL_MAGICS, install_guard

    # parent=ipython: what ipython_config.py or the command line set (c.ColabMagics.jobs = 4)
    # applies; in shell.configurables, %config ColabMagics.jobs = 4 reaches it.
    configured = settings.ColabMagics(parent=ipython)
    ipython.configurables.append(configured)
    settings.use(configured)
    for magics in ALL_MAGICS:
        ipython.register_magics(magics)
    install_guard(ipython)
    setattr(ipython, _LOADED_ATTR, True)


def unload(ipython) -> None:
    """Remove what :func:`load` registered, after pushing what background watches still hold."""
    if not getattr(ipython, _LOADED_ATTR, False):
        return
    import colab_magics.settings as settings
    from colab_magics.background import stop_watches
    from colab_magics.guard import uninstall
    from colab_magics.magics import ALL_MAGICS

    stop_watches(flush=True)
    uninstall(ipython)
    registry = ipython.magics_manager.magics
    for magics in ALL_MAGICS:
        for kind, names in magics.magics.items():
            for name in names:
                registry[kind].pop(name, None)
    configured = [c for c in ipython.configurables if isinstance(c, settings.ColabMagics)]
    for c in configured:
        ipython.configurables.remove(c)
    if settings.current() in configured:
        settings.use(None)
    setattr(ipython, _LOADED_ATTR, False)
