"""README's first command end to end: real kernels, a real SIGKILL, the emulator, torch on CPU."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from colab_magics.demo import notebook as nb
from colab_magics.demo.runner import DEFAULT_NOTEBOOK


@pytest.mark.slow
def test_demo_kills_resumes_and_matches_an_uninterrupted_run(tmp_path):
    out = tmp_path / "executed.ipynb"
    done = subprocess.run(
        [sys.executable, "-m", "colab_magics", "demo", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = done.stdout
    assert done.returncode == 0, report + done.stderr
    assert "Demo report: every claim holds" in report
    killed = re.search(r"\[ok\] killed runtime 1 with SIGKILL at step (\d+)/(\d+)", report)
    resumed = re.search(
        r"\[ok\] runtime 2, on an empty disk, resumed from confirmed step (\d+) "
        r"\(([^)]*) ago\): (\d+) steps redone; in the middle of epoch \d+, after batch",
        report,
    )
    assert killed and resumed, report
    n, total, m = int(killed.group(1)), int(killed.group(2)), int(resumed.group(1))
    assert 0 < m <= n < total
    assert int(resumed.group(3)) == n - m
    assert f"[ok] runtime 2 finished: step {total}/{total}, no errors" in report
    assert "[ok] final weights identical to an uninterrupted run (sha256 " in report
    assert "FAILED" not in report
    seconds = float(re.search(r"time taken: ([\d.]+) s", report).group(1))
    assert seconds < 240, report  # well under two minutes here; slack for a loaded CI box

    executed = nb.load(out)
    cells = nb.code_cells(executed)
    assert all(cell["execution_count"] and cell.get("outputs") is not None for cell in cells)
    text = "\n".join(nb.output_text(o) for o in nb.outputs_of(executed))
    assert f"Resumed from step {m} " in text
    assert f"trained to step {total}/{total}" in text
    assert re.search(r"final weights sha256 [0-9a-f]{64}", text)
    assert not any(o["output_type"] == "error" for o in nb.outputs_of(executed))
    training = next(c for c in cells if nb.source(c).startswith("%%checkpointed"))
    panel = [o for o in training["outputs"] if o["output_type"] == "display_data"]
    assert panel and "application/vnd.jupyter.widget-view+json" in panel[0]["data"]
    assert executed["metadata"]["widgets"][nb.WIDGET_STATE]["state"]
    assert not _token_like(out.read_text(encoding="utf-8") + report + done.stderr)


def _token_like(text: str) -> list[str]:
    """Runs of 43+ URL-safe characters (the emulator's tokens), less digests and widget ids."""
    return [
        run
        for run in re.findall(r"[A-Za-z0-9_-]{43,}", text)
        if not re.fullmatch(r"[0-9a-f]+|IPY_MODEL_[0-9a-f]+", run)
    ]


@pytest.mark.slow
def test_demo_exits_nonzero_when_the_run_does_not_resume(tmp_path):
    # The same notebook, shorter, but its training cell ignores checkpoints: runtime 2 starts
    # over, so the resume claim must fail and the exit status say so.
    text = DEFAULT_NOTEBOOK.read_text(encoding="utf-8")
    assert "EPOCHS = 8" in text and "--keep 2" in text
    variant = tmp_path / "fresh.ipynb"
    variant.write_text(text.replace("EPOCHS = 8", "EPOCHS = 3").replace("--keep 2", "--fresh"))
    done = subprocess.run(
        [sys.executable, "-m", "colab_magics", "demo", "--notebook", str(variant)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Demo report: A CLAIM FAILED" in done.stdout
    assert "[FAILED] runtime 2 did not resume from a checkpoint" in done.stdout
    assert "[ok] killed runtime 1 with SIGKILL at step 80/123" in done.stdout
    assert (tmp_path / "demo.executed.ipynb").exists()  # the default: in the current directory
