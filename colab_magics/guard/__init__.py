"""The consistency guard: it stops a cell before it trains on a missing or partial listing of
the Drive mount, and says what is still waiting to reach Drive.

``check`` compares the mount's view of a path with Drive's (``mountindex`` keeps Drive's side,
``mountview`` finds pending writes); ``cell`` runs that check as the first statement of a
cell; ``paths`` finds the mount paths a cell names; ``findings`` words what was found.
"""

from colab_magics.guard.cell import install, installed, uninstall
from colab_magics.guard.check import Guard
from colab_magics.guard.findings import STOPPING, Finding, GuardError

__all__ = ["STOPPING", "Finding", "Guard", "GuardError", "install", "installed", "uninstall"]
