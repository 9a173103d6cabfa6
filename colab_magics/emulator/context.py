"""What every request handler works with: the store, the upload sessions and the settings."""

from __future__ import annotations

import dataclasses
import random
import threading

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
    _dice: random.Random | None = dataclasses.field(default=None, init=False)
    _dice_seed: int | None = dataclasses.field(default=None, init=False)
    _dice_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, init=False)

    def chance(self) -> float:
        """A uniform draw in [0, 1) for answers that vary by chance (short pages), from dice
        restarted whenever ``settings.seed`` changes, so a seeded run replays."""
        with self._dice_lock:
            seed = self.settings.seed
            if self._dice is None or seed != self._dice_seed:
                self._dice, self._dice_seed = (
                    random.Random(f"ctx:{seed}" if seed is not None else None),
                    seed,
                )
            return self._dice.random()
