"""Hooks that push a trainer's own checkpoints on its save events (``%%checkpointed --dir``).

Each framework's module is imported only when its hook is asked for, so nothing here
imports transformers, Lightning or Keras until the cell uses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from colab_magics.checkpoint.folder import FolderSync


class TrainerHooks:
    """What ``ckpt`` offers a trainer that writes into ``--dir``."""

    folder: FolderSync | None = None
    """The ``--dir`` folder's sync, or None when the cell has no ``--dir``."""

    @property
    def resume_path(self) -> str | None:
        """The newest checkpoint restored into ``--dir`` (a local path), or None on a first
        run: pass it to ``trainer.train(resume_from_checkpoint=...)`` or ``ckpt_path=``."""
        return None if self.folder is None else self.folder.resume_path

    def _hooked_folder(self, what: str, hook: str) -> FolderSync:
        if self.folder is None:
            raise ValueError(f"ckpt.{what}() needs --dir: name the folder the trainer writes")
        self.folder.use_hooks(hook)
        return self.folder

    def hf_callback(self) -> Any:
        """A ``transformers.TrainerCallback`` for ``Trainer(callbacks=[...])``, with
        ``TrainingArguments(output_dir=<--dir>)``: each ``checkpoint-N`` pushed on save."""
        from colab_magics.trainers.hf import DriveCallback

        return DriveCallback(self._hooked_folder("hf_callback", "hf"))

    def lightning_plugin(self) -> Any:
        """A Lightning ``CheckpointIO`` for ``Trainer(plugins=[...])``: each ``.ckpt`` saved
        inside ``--dir`` is pushed, each one Lightning removes is deleted on Drive."""
        from colab_magics.trainers.lightning import DriveCheckpointIO

        return DriveCheckpointIO(self._hooked_folder("lightning_plugin", "lightning"))

    def keras_callback(self, **options: Any) -> Any:
        """A ``keras.callbacks.BackupAndRestore`` whose backup folder is ``--dir``, pushed on
        every backup; a finished run stays on Drive as such (``options`` go to Keras)."""
        from colab_magics.trainers.keras import DriveBackupAndRestore

        return DriveBackupAndRestore(self._hooked_folder("keras_callback", "keras"), **options)
