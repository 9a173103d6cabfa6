"""The Hugging Face ``Trainer`` recipe: killed mid-upload, resumed in a fresh runtime.

Hugging Face resumes exactly from a checkpoint on a surviving disk (its RNG states, the
batches of the epoch already seen: ``Trainer._load_rng_state``, ``skip_first_batches``), so a
run resumed from the newest checkpoint Drive confirmed must end with the weights of a run never
interrupted. A checkpoint cut off mid-upload must never be what it resumes from.
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

SETUP = (
    """
%load_ext colab_magics
import hashlib, time, torch, transformers
from transformers import (BertConfig, BertForSequenceClassification, Trainer, TrainerCallback,
                          TrainingArguments)

class Data(torch.utils.data.Dataset):
    def __len__(self):
        return 40
    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"input_ids": torch.randint(0, 64, (8,), generator=g), "labels": i % 2}

config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=32, max_position_embeddings=16, num_labels=2)

def arguments(out):
    return TrainingArguments(out, max_steps=STEPS, save_steps=SAVE_EVERY, save_total_limit=KEEP,
                             per_device_train_batch_size=8, learning_rate=1e-3, report_to=[],
                             use_cpu=True, seed=0, disable_tqdm=True, logging_strategy="no")

def digest(model):
    weights = b"".join(v.numpy().tobytes() for v in model.state_dict().values())
    return hashlib.sha256(weights).hexdigest()
""".replace("STEPS", str(STEPS))
    .replace("SAVE_EVERY", str(SAVE_EVERY))
    .replace("KEEP", str(KEEP))
)

PROGRESS = """
class Progress(TrainerCallback):
    def on_train_begin(self, args, state, control, **kwargs):
        print("BEGIN", state.global_step, flush=True)
    def on_step_end(self, args, state, control, **kwargs):
        time.sleep(0.05)
        print(f"STEP {state.global_step} | {PANEL}", flush=True)
""".replace("PANEL", PANEL)

# The recipe, as the README gives it.
TRAIN = """%%checkpointed bert --dir out
transformers.set_seed(0)
model = BertForSequenceClassification(config)
trainer = Trainer(model=model, args=arguments("out"), train_dataset=Data(),
                  callbacks=[ckpt.hf_callback(), Progress()])
trainer.train(resume_from_checkpoint=ckpt.resume_path)
print("DIGEST", digest(model))
"""


STRAIGHT = """
transformers.set_seed(0)
model = BertForSequenceClassification(config)
Trainer(model=model, args=arguments("straight"), train_dataset=Data()).train()
print("DIGEST", digest(model))
"""
"""The same training, never interrupted, without colab_magics."""


def _digest(out: str) -> str:
    return out.split("DIGEST ")[1].split()[0]


@pytest.mark.slow
def test_killed_mid_upload_resumes_from_the_newest_confirmed_checkpoint(emulator, client, tmp_path):
    emulator.settings.update({"latency": 0.05})  # a checkpoint's upload spans several steps
    first = Runtime(emulator, tmp_path, "content")
    first.run(SETUP + PROGRESS)
    killed_at, panel = first.kill_while_uploading(TRAIN, after_step=2 * SAVE_EVERY)
    confirmed = units_on_drive(client, "bert")
    assert uploading_unit(panel), panel  # killed while a checkpoint was uploading
    newest = max(int(unit.split("-")[1]) for unit in confirmed)
    assert 0 < newest < killed_at, (confirmed, killed_at, panel)

    emulator.settings.update({"latency": 0.0})
    second = Runtime(emulator, tmp_path, "content")  # Colab's /content, empty again
    try:
        second.run(SETUP + PROGRESS)
        out = second.run(TRAIN)
        local = sorted(n for n in os.listdir(os.path.join(second.cwd, "out")) if "checkpoint" in n)
        straight = second.run(STRAIGHT)
        elsewhere = second.kernel.run(TRAIN.replace('arguments("out")', 'arguments("elsewhere")'))
    finally:
        second.close()
    assert f"BEGIN {newest}\n" in out  # resumed from the newest confirmed checkpoint
    assert f"STEP {STEPS} |" in out  # and ran to the end
    assert _digest(out) == _digest(straight)
    # Rotation (save_total_limit) is mirrored: Drive holds what the trainer kept, all whole.
    assert (
        sorted(units_on_drive(client, "bert"))
        == local
        == [
            f"checkpoint-{STEPS - SAVE_EVERY}",
            f"checkpoint-{STEPS}",
        ]
    )
    assert partial_uploads(client, "bert") == 0
    # A trainer writing outside --dir is stopped before its first step, in one line.
    assert "is not inside --dir 'out'" in str(elsewhere.error)
