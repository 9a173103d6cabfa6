"""%%checkpointed --dir: a trainer that writes its own checkpoints (seed 004's sketch_rnn)."""

from __future__ import annotations

import shutil
import sys

import pytest

from colab_magics.checkpoint.dir_units import UnitStore
from colab_magics.connection import use_client
from colab_magics.drive import connect

# Like `sketch_rnn_train --log_root=logs --resume_training`: continue from the newest file.
TRAINER = """
import os, sys
os.makedirs("logs", exist_ok=True)
done = [int(n.split("-")[1].split(".")[0]) for n in os.listdir("logs") if n.startswith("vector-")]
start = max(done, default=0)
for k in range(start + 1, start + 1 + int(sys.argv[1])):
    with open(f"logs/vector-{k}.data", "wb") as f:
        f.write(os.urandom(50_000))
    with open("logs/checkpoint", "w") as f:
        f.write(f"vector-{k}")
"""


def _units(client):
    """The units of run sketch's --dir that Drive holds whole (manifest and files)."""
    return UnitStore(client, "colab_magics/checkpoints/sketch/dir", run="sketch").confirmed()


@pytest.fixture
def client(emulator, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLAB_MAGICS_STAGING", str(tmp_path / "staging"))
    (tmp_path / "train.py").write_text(TRAINER)
    c = connect(url=emulator.url, token=emulator.token)
    previous = use_client(c)
    yield c
    use_client(previous)
    c.close()


def test_a_shell_trainer_resumes_from_its_own_files_in_a_fresh_runtime(shell, client, tmp_path):
    cell = f"%%checkpointed sketch --dir logs\n!{sys.executable} train.py 3\n"
    assert shell.run_cell(cell).error_in_exec is None
    on_drive = sorted(m.unit for m in _units(client))
    assert on_drive == ["checkpoint", "vector-1.data", "vector-2.data", "vector-3.data"]
    local = (tmp_path / "logs" / "vector-3.data").read_bytes()

    shutil.rmtree(tmp_path / "logs")  # a new runtime: the local disk is empty
    assert shell.run_cell(cell).error_in_exec is None
    assert (tmp_path / "logs" / "vector-3.data").read_bytes() == local  # restored first
    assert (tmp_path / "logs" / "checkpoint").read_text() == "vector-6"  # then continued
    units = {m.unit: m for m in _units(client)}
    assert {"vector-4.data", "vector-5.data", "vector-6.data"} <= set(units)
    (index,) = units["checkpoint"].files
    assert client.read_bytes(client.file(index.file_id)) == b"vector-6"


def test_nothing_to_checkpoint_is_a_usage_error(shell, client):
    from IPython.core.error import UsageError

    result = shell.run_cell("%%checkpointed run\npass\n")
    assert isinstance(result.error_in_exec, UsageError)
    assert "nothing to checkpoint" in str(result.error_in_exec)
