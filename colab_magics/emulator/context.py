"""What every request handler works with: the store, the upload sessions and the settings."""

from __future__ import annotations

import dataclasses
import random

from colab_magics.emulator.pagetokens import PageTokens
from colab_magics.emulator.sessions import Sessions
from colab_magics.emulator.settings import EmulatorSettings
from colab_magics.emulator.store import Store


@dataclasses.dataclass
class Context:
    store: Store
    sessions: Sessions
    settings: EmulatorSettings
    page_tokens: PageTokens = dataclasses.field(default_factory=PageTokens)
    dice: random.Random = dataclasses.field(default_factory=random.Random)
    """Chance in answers that are not faults of one request (short pages)."""
