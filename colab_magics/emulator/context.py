"""What every request handler works with: the store, the upload sessions and the settings."""

from __future__ import annotations

import dataclasses

from colab_magics.emulator.sessions import Sessions
from colab_magics.emulator.settings import EmulatorSettings
from colab_magics.emulator.store import Store


@dataclasses.dataclass
class Context:
    store: Store
    sessions: Sessions
    settings: EmulatorSettings
