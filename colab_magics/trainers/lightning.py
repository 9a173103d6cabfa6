"""PyTorch Lightning: a ``CheckpointIO`` that pushes each ``.ckpt`` once Lightning wrote it
and deletes on Drive each one Lightning removes (``ModelCheckpoint``'s rotation)."""

from __future__ import annotations

import os
from typing import Any

try:
    from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
except ImportError:  # the standalone ``pytorch_lightning`` package
    from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from colab_magics.checkpoint.folder import FolderSync


class DriveCheckpointIO(TorchCheckpointIO):
    """Lightning's own ``torch.save`` I/O, with each file inside ``--dir`` mirrored on Drive.

    A checkpoint outside ``--dir`` is saved as usual, not pushed, and the panel says so."""

    def __init__(self, folder: FolderSync) -> None:
        super().__init__()
        self.folder = folder

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        super().save_checkpoint(checkpoint, path, storage_options=storage_options)
        unit = self._unit(path)
        if unit is not None:
            self.folder.saved(unit)

    def remove_checkpoint(self, path) -> None:
        super().remove_checkpoint(path)
        unit = self._unit(path)
        if unit is not None:
            self.folder.deleted(unit)

    def _unit(self, path) -> str | None:
        try:
            return self.folder.unit_of(os.fspath(path))
        except ValueError as exc:
            self.folder.progress.update(error=f"--dir: not pushed to Drive: {exc}")
            return None
