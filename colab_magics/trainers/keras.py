"""Keras 3: ``BackupAndRestore`` whose backup folder is ``--dir``, pushed on every backup.

Keras deletes its backup folder when ``fit()`` ends well. Here the finished state is backed up
once more first (``training_metadata.json`` then names the last epoch), so Drive keeps it: a
later runtime restores it and ``fit()`` has no epoch left to run instead of starting over."""

from __future__ import annotations

from typing import Any

import keras

from colab_magics.checkpoint.dir_units import WHOLE
from colab_magics.checkpoint.folder import FolderSync


class DriveBackupAndRestore(keras.callbacks.BackupAndRestore):
    def __init__(self, folder: FolderSync, **options: Any) -> None:
        super().__init__(backup_dir=folder.local, **options)
        self.folder = folder

    def _save_model(self) -> None:
        super()._save_model()  # weights, then the metadata Keras reads to resume
        self.folder.saved(WHOLE)

    def on_epoch_end(self, epoch, logs=None) -> None:
        super().on_epoch_end(epoch, logs)
        self.folder.trainer_step(epoch + 1, (self.params or {}).get("epochs"))

    def on_train_end(self, logs=None) -> None:
        # The end of the last epoch, as its own backup had it (then nothing is uploaded).
        # A fit() that resumed a finished run ran no epoch: its backup stays as it is.
        if self._current_epoch:
            self._save_model()
        super().on_train_end(logs)
