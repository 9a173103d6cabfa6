"""The demo's claims fail when the evidence is missing or wrong; outputs assemble like Jupyter's."""

from __future__ import annotations

from colab_magics.demo.outputs import CellOutputs, WidgetStates
from colab_magics.demo.report import Runtime, claims
from colab_magics.demo.runner import renamed_run, run_demo

DIGEST = "ab" * 32


def _runs(**changes):
    killed = Runtime("runtime 1", text="step 180/300  loss 0.1\n", killed_at=180, wiped=True)
    resumed = Runtime(
        "runtime 2",
        text="Resumed from step 175 (9s ago) from drive:x\nstep 300/300  loss 0.1\n"
        f"trained to step 300/300, accuracy 99.0%\nfinal weights sha256 {DIGEST}\n",
    )
    reference = Runtime(
        "reference",
        text="No confirmed checkpoint: starting at step 0\n"
        f"trained to step 300/300, accuracy 99.0%\nfinal weights sha256 {DIGEST}\n",
    )
    runs = {"killed": killed, "resumed": resumed, "reference": reference}
    for name, text in changes.items():
        runs[name].text = text
    return runs


def _verdicts(runs):
    return [claim.ok for claim in claims(runs["killed"], runs["resumed"], runs["reference"], 300)]


def test_all_claims_hold_on_good_evidence():
    assert _verdicts(_runs()) == [True, True, True, True]


def test_a_different_digest_fails_the_weights_claim():
    runs = _runs()
    runs["reference"].text = runs["reference"].text.replace(DIGEST, "cd" * 32)
    assert _verdicts(runs) == [True, True, True, False]


def test_a_resume_at_an_epoch_start_does_not_prove_a_mid_epoch_one():
    line = "Resumed from step 164 (9s ago) from drive:x, in epoch 5 after batch {}/41\n"
    mid = _runs(resumed=line.format(11) + _runs()["resumed"].text)
    assert _verdicts(mid)[1]
    start = _runs(resumed=line.format(0) + _runs()["resumed"].text)
    assert not _verdicts(start)[1]
    text = claims(start["killed"], start["resumed"], start["reference"], 300)[1].text
    assert "at the start of epoch 5, not in the middle of one" in text


def test_starting_over_is_not_resuming():
    runs = _runs()
    runs["resumed"].text = runs["resumed"].text.replace(
        "Resumed from step 175 (9s ago) from drive:x", "No confirmed checkpoint: starting at step 0"
    )
    assert _verdicts(runs)[1] is False


def test_a_kernel_never_killed_or_a_resume_past_the_kill_fails():
    runs = _runs()
    runs["killed"].killed_at = None
    assert _verdicts(runs)[:2] == [False, False]
    runs = _runs()
    runs["killed"].killed_at = 170
    assert _verdicts(runs)[1] is False


def test_a_disk_not_wiped_fails_the_kill_claim():
    runs = _runs()
    runs["killed"].wiped = False
    assert _verdicts(runs)[0] is False


def test_an_error_in_the_resumed_run_fails_finishing():
    runs = _runs()
    runs["resumed"].errors.append("cell 9 (%drive_quota): UsageError: boom")
    assert _verdicts(runs)[2] is False


def test_reference_runs_under_another_name():
    cell = "%%checkpointed demo --save model --every 25\nfor step in ckpt.range(3):\n    pass\n"
    assert renamed_run(cell, "-reference").startswith("%%checkpointed demo-reference --save")


def test_notebook_without_a_training_cell_exits_nonzero(tmp_path, capsys):
    path = tmp_path / "plain.ipynb"
    path.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    assert run_demo(path, tmp_path / "out.ipynb") == 1
    assert "no %%checkpointed cell" in capsys.readouterr().out


def _msg(kind, **content):
    return {"msg_type": kind, "content": content}


def test_outputs_merge_streams_honour_clear_and_updates_and_keep_widget_state():
    widgets = WidgetStates()
    cell = CellOutputs(widgets)
    cell.add(_msg("execute_input", execution_count=3))
    assert cell.add(_msg("stream", name="stdout", text="a\n")) == "a\n"
    cell.add(_msg("stream", name="stdout", text="b\n"))
    cell.add(_msg("display_data", data={"text/plain": "1"}, metadata={},
                  transient={"display_id": "d"}))  # fmt: skip
    cell.add(_msg("update_display_data", data={"text/plain": "2"}, metadata={},
                  transient={"display_id": "d"}))  # fmt: skip
    assert [o.get("text") or o["data"]["text/plain"] for o in cell.outputs] == ["a\nb\n", "2"]
    cell.add(_msg("clear_output", wait=True))
    assert len(cell.outputs) == 2  # cleared only when the next output comes
    cell.add(_msg("error", ename="ValueError", evalue="bad", traceback=[]))
    assert [o["output_type"] for o in cell.outputs] == ["error"]
    assert cell.error == "ValueError: bad" and cell.execution_count == 3

    state = {"_model_name": "FloatProgressModel", "_model_module": "@jupyter-widgets/controls",
             "_model_module_version": "2.0.0", "value": 0.0}  # fmt: skip
    cell.add(_msg("comm_open", comm_id="w", target_name="jupyter.widget",
                  data={"state": state}))  # fmt: skip
    cell.add(_msg("comm_msg", comm_id="w", data={"method": "update", "state": {"value": 1.0}}))
    saved = widgets.metadata()["state"]["w"]
    assert saved["model_name"] == "FloatProgressModel" and saved["state"]["value"] == 1.0
