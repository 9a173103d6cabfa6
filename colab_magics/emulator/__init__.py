"""A local Google Drive v3 server that google-api-python-client cannot tell from Drive.

Start it with ``python -m colab_magics.emulator --root DIR`` or, in-process,
``start_emulator(root)``, which returns a handle with ``.url``, ``.token`` and ``.stop()``.
"""

from colab_magics.emulator.server import EmulatorHandle, start_emulator
from colab_magics.emulator.settings import EmulatorSettings

__all__ = ["EmulatorHandle", "EmulatorSettings", "start_emulator"]
