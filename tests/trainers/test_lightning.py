"""The PyTorch Lightning recipe: killed mid-upload, resumed in a fresh runtime.

``ModelCheckpoint`` writes each ``.ckpt`` through the strategy's ``CheckpointIO`` and removes
the ones ``save_top_k`` drops through ``CheckpointIO.remove_checkpoint`` (Lightning's
``ModelCheckpoint._remove_checkpoint``): the plugin pushes each file once written and deletes
on Drive each one removed, so Drive holds what Lightning kept, whole.
"""

from __future__ import annotations

import os

import pytest

from tests.trainers.driver import (
    PANEL,
    Runtime,
    partial_uploads,
    units_on_drive,
    uploading_unit,
)

STEPS, SAVE_EVERY, KEEP = 24, 4, 2

SETUP = """
%load_ext colab_magics
import time, torch
import lightning as L

class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(4, 8), torch.nn.Linear(8, 1)
    def training_step(self, batch, index):
        x, y = batch
        return torch.nn.functional.mse_loss(self.b(torch.tanh(self.a(x))), y)
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

g = torch.Generator().manual_seed(0)
data = torch.utils.data.TensorDataset(torch.randn(40, 4, generator=g),
                                      torch.randn(40, 1, generator=g))

class Progress(L.Callback):
    def on_train_start(self, trainer, module):
        print("BEGIN", trainer.global_step, flush=True)
    def on_train_batch_end(self, trainer, *args):
        time.sleep(0.15)
        print(f"STEP {trainer.global_step} | {PANEL}", flush=True)
""".replace("PANEL", PANEL)

# The recipe, as the README gives it.
TRAIN = (
    """%%checkpointed lit --dir ckpts
L.seed_everything(0)
model = Net()
saver = L.pytorch.callbacks.ModelCheckpoint(
    dirpath="ckpts", every_n_train_steps=SAVE_EVERY, save_top_k=KEEP, monitor="step", mode="max")
trainer = L.Trainer(max_steps=STEPS, callbacks=[saver, Progress()],
                    plugins=[ckpt.lightning_plugin()], logger=False, accelerator="cpu",
                    enable_progress_bar=False, enable_model_summary=False)
trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=8), ckpt_path=ckpt.resume_path)
""".replace("STEPS", str(STEPS))
    .replace("SAVE_EVERY", str(SAVE_EVERY))
    .replace("KEEP", str(KEEP))
)


def _step(unit: str) -> int:
    return int(unit.split("step=")[1].split(".")[0])


@pytest.mark.slow
def test_killed_mid_upload_resumes_from_the_newest_confirmed_checkpoint(emulator, client, tmp_path):
    emulator.settings.update({"latency": 0.05})  # a checkpoint's upload spans several steps
    first = Runtime(emulator, tmp_path, "content")
    first.run(SETUP)
    killed_at, panel = first.kill_while_uploading(TRAIN, after_step=3 * SAVE_EVERY)
    confirmed = units_on_drive(client, "lit")
    assert uploading_unit(panel), panel  # killed while a checkpoint was uploading
    assert confirmed, (killed_at, panel)
    newest = max(_step(unit) for unit in confirmed)
    assert 0 < newest < killed_at, (confirmed, killed_at, panel)

    emulator.settings.update({"latency": 0.0})
    second = Runtime(emulator, tmp_path, "content")  # Colab's /content, empty again
    try:
        second.run(SETUP)
        out = second.run(TRAIN)
        local = sorted(os.listdir(os.path.join(second.cwd, "ckpts")))
    finally:
        second.close()
    assert f"BEGIN {newest}\n" in out  # resumed from the newest confirmed checkpoint
    assert f"STEP {STEPS} |" in out  # and ran to the end
    # save_top_k's removals are mirrored: Drive holds the files Lightning kept, all whole.
    assert sorted(units_on_drive(client, "lit")) == local
    # save_top_k's two, and the one it resumed from (``_should_remove_checkpoint`` keeps it).
    assert [_step(name) for name in local] == sorted({newest, STEPS - SAVE_EVERY, STEPS})
    assert partial_uploads(client, "lit") == 0
