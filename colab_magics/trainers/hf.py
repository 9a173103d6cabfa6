"""Hugging Face ``Trainer``: push each ``checkpoint-N`` folder when the trainer has saved it."""

from __future__ import annotations

import os

from transformers import TrainerCallback

from colab_magics.checkpoint.folder import FolderSync

PREFIX = "checkpoint-"


class DriveCallback(TrainerCallback):
    """``on_save`` comes after the whole ``checkpoint-N`` is written (``trainer_state.json``
    last) and after ``save_total_limit`` rotated older ones out: the new folder is queued
    for Drive and the rotated ones are deleted there."""

    def __init__(self, folder: FolderSync) -> None:
        self.folder = folder

    def on_train_begin(self, args, state, control, **kwargs):
        try:
            self.folder.unit_of(args.output_dir)
        except ValueError:
            raise ValueError(
                f"TrainingArguments(output_dir={args.output_dir!r}) is not inside --dir "
                f"{self.folder.local!r}: its checkpoints would not reach Drive"
            ) from None

    def on_step_end(self, args, state, control, **kwargs):
        self.folder.trainer_step(state.global_step, state.max_steps)

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        checkpoint = os.path.join(args.output_dir, f"{PREFIX}{state.global_step}")
        self.folder.mirror_deletions(lambda unit: _is_checkpoint(unit, self.folder, args))
        self.folder.saved(self.folder.unit_of(checkpoint))


def _is_checkpoint(unit: str, folder: FolderSync, args) -> bool:
    """A ``checkpoint-N`` folder of this trainer's ``output_dir``."""
    parent, name = os.path.split(os.path.abspath(os.path.join(folder.local, unit)))
    return parent == os.path.abspath(args.output_dir) and name.startswith(PREFIX)
