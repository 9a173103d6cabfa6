"""The Keras 3 recipe (``BackupAndRestore``, torch backend): killed mid-upload, resumed in a
fresh runtime; once finished, a later runtime does not train it again.

Keras's ``BackupAndRestore`` writes ``latest.weights.h5`` then ``training_metadata.json`` (the
epoch to resume at) and deletes its folder when ``fit()`` succeeds
(``keras/src/callbacks/backup_and_restore.py``).
"""

from __future__ import annotations

import json

import pytest

from tests.trainers.driver import PANEL, Runtime, units_on_drive, uploading_unit

EPOCHS = 10
ENV = {"KERAS_BACKEND": "torch"}

SETUP = """
%load_ext colab_magics
import hashlib, time
import numpy as np
import keras

rng = np.random.RandomState(0)
x, y = rng.randn(64, 4).astype("float32"), rng.randn(64, 1).astype("float32")

class Progress(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        print("EPOCH", epoch, flush=True)
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(0.15)
        print(f"STEP {epoch + 1} | {PANEL}", flush=True)

def digest(model):
    weights = b"".join(np.asarray(w).tobytes() for w in model.get_weights())
    return hashlib.sha256(weights).hexdigest()
""".replace("PANEL", PANEL)

# The recipe, as the README gives it.
TRAIN = """%%checkpointed fit --dir backup
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"),
                          keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
model.fit(x, y, epochs=EPOCHS, batch_size=16, verbose=0,
          callbacks=[ckpt.keras_callback(), Progress()])
print("DIGEST", digest(model))
print("PANEL", ckpt.folder.progress.get("step"), ckpt.folder.progress.get("total"))
""".replace("EPOCHS", str(EPOCHS))


def _backed_up_epoch(client) -> int:
    """The epoch the backup confirmed on Drive resumes at (its ``training_metadata.json``)."""
    (unit,) = units_on_drive(client, "fit").values()
    (metadata,) = [f for f in unit.files if f.path == "training_metadata.json"]
    return json.loads(client.read_bytes(client.file(metadata.file_id)))["epoch"]


@pytest.mark.slow
def test_killed_mid_upload_resumes_and_a_finished_run_is_not_trained_again(
    emulator, client, tmp_path
):
    emulator.settings.update({"latency": 0.05})  # a backup's upload spans several epochs
    first = Runtime(emulator, tmp_path, "content", ENV)
    first.run(SETUP)
    killed_at, panel = first.kill_while_uploading(TRAIN, after_step=3)
    assert uploading_unit(panel), panel  # killed while a backup was uploading
    confirmed = _backed_up_epoch(client)
    assert 0 < confirmed < killed_at

    emulator.settings.update({"latency": 0.0})
    second = Runtime(emulator, tmp_path, "content", ENV)  # Colab's /content, empty again
    try:
        second.run(SETUP)
        out = second.run(TRAIN)
        # Keras deleted its backup folder on success; a new runtime's disk is empty anyway.
        again = second.run(TRAIN)
    finally:
        second.close()
    epochs = [int(line.split()[1]) for line in out.splitlines() if line.startswith("EPOCH ")]
    assert epochs == list(range(confirmed, EPOCHS))  # resumed at the confirmed backup
    assert f"PANEL {EPOCHS} {EPOCHS}\n" in out  # the panel's bar follows the epochs
    assert _backed_up_epoch(client) == EPOCHS  # the finished state stays on Drive
    assert "EPOCH" not in again  # nothing left to train
    assert again.split("DIGEST ")[1].split()[0] == out.split("DIGEST ")[1].split()[0]
