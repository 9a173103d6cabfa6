"""The extension's settings: ``config=True`` traits on one Configurable, read through :func:`get`.

In IPython, ``%config ColabMagics.guard_folder_limit = 10000`` (or ``c.ColabMagics...`` in
``ipython_config.py``) sets them once the extension is loaded. A setting that mirrors a
``COLAB_MAGICS_*`` environment variable is ``None`` until set: :func:`get` then reads the
variable at that moment, and the built-in default when it is unset too. This module imports
traitlets only, so every layer may read settings without pulling in IPython.
"""

from __future__ import annotations

import math
import os
import threading
from typing import Any

from traitlets import Float, Int, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

LEASE_ENV = "COLAB_MAGICS_LEASE_SECONDS"
STAGING_ENV = "COLAB_MAGICS_STAGING"
MOUNT_ENV = "COLAB_MAGICS_MOUNT"


class ColabMagics(LoggingConfigurable):
    """Settings of the colab_magics extension."""

    guard_folder_limit = Int(
        5000,
        min=1,
        help="Entries in one mount folder past which the Drive guard warns that reads through "
        "the mount may come back partial.",
    ).tag(config=True)
    guard_quota_ratio = Float(
        0.95,
        min=0.0,
        max=1.0,
        help="Share of Drive's storage in use (trash included) at which the Drive guard warns.",
    ).tag(config=True)
    lease_seconds = Float(
        None,
        allow_none=True,
        help=f"Seconds a runtime's lease on a checkpointed run lasts without a heartbeat "
        f"(None: ${LEASE_ENV}, else 30).",
    ).tag(config=True, env=LEASE_ENV, builtin=30.0, hint="the lease's lifetime in seconds, e.g. 30")
    staging = Unicode(
        None,
        allow_none=True,
        help=f"Local folder for checkpoint snapshots (None: ${STAGING_ENV}, else a private "
        "folder in the temp dir).",
    ).tag(config=True, env=STAGING_ENV, builtin=None, hint="a folder path")
    mount = Unicode(
        None,
        allow_none=True,
        help=f"Where My Drive is mounted when the connection does not say (None: ${MOUNT_ENV}, "
        "else Colab's /content/drive/MyDrive).",
    ).tag(config=True, env=MOUNT_ENV, builtin=None, hint="a folder path")
    lifetime = Unicode(
        None,
        allow_none=True,
        help="Default %%checkpointed --lifetime: how long a runtime lives, like 12h or 'none' "
        "(None: 12h on Colab, no deadline elsewhere).",
    ).tag(config=True)
    margin = Unicode(
        "10m", help="Default %%checkpointed --margin: stop this long before the runtime's end."
    ).tag(config=True)
    jobs = Int(8, min=1, help="Default %drive_sync --jobs: transfers in parallel.").tag(config=True)

    @validate("lease_seconds")
    def _positive_seconds(self, proposal: Any) -> float | None:
        value = proposal["value"]
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise TraitError(f"lease_seconds must be a positive number of seconds, not {value}")
        return value


_lock = threading.Lock()
_current: ColabMagics | None = None


def current() -> ColabMagics:
    """The settings in force: the ones :func:`use` installed, else the defaults."""
    global _current
    with _lock:
        if _current is None:
            _current = ColabMagics()
        return _current


def use(settings: ColabMagics | None) -> ColabMagics | None:
    """Make ``settings`` the ones in force (None: back to defaults); returns the previous."""
    global _current
    with _lock:
        previous, _current = _current, settings
    return previous


def get(name: str) -> Any:
    """Setting ``name``'s value now: the one set, else its environment variable, else the
    built-in default. A bad variable raises ``ValueError`` naming it."""
    value = getattr(current(), name)
    if value is not None:
        return value
    trait = getattr(ColabMagics, name)  # the class attribute is the trait itself
    env = trait.metadata.get("env")
    if env is None:
        return value
    text = os.environ.get(env, "").strip()
    if not text:
        return trait.metadata.get("builtin")
    try:
        return getattr(ColabMagics(**{name: trait.from_string(text)}), name)
    except (TraitError, ValueError):
        raise ValueError(f"{env}={text!r}: give {trait.metadata['hint']}") from None
