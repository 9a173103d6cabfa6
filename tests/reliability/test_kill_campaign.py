"""The kill campaign at CI size: one trial per kill moment (torch for the snapshot, NumPy else).

Each trial SIGKILLs a training kernel at its moment (mid-step, mid-snapshot, mid blob upload,
between the last blob and the manifest, during the manifest upload, mid retention delete),
resumes in a new kernel in an empty directory, and must: resume from the newest checkpoint
Drive held complete before the restart, end with the uninterrupted run's weights, redo at
most one interval beyond the steps run while the next checkpoint was being persisted, and
leave at most ``keep`` checkpoints and no orphan blob folders once the resumed run ends.
``bench/kill_campaign.py`` runs the same trials by the hundred.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from random import Random

import numpy as np
import pytest
from googleapiclient.http import MediaInMemoryUpload

from colab_magics.checkpoint.api import checkpointed
from colab_magics.checkpoint.drive_store import DriveCheckpointStore
from colab_magics.checkpoint.manifest import Manifest
from colab_magics.drive import connect
from tests.emulator.test_faults import TRANSPORT_ERRORS
from tests.reliability.campaign import (
    MOMENTS,
    Campaign,
    Config,
    Killer,
    Plan,
    inspect_run,
    plan_trials,
    request_kind,
    run_folder,
)

CI = Config(steps=25, every=5, step_seconds=0.15, keep=2, ballast_mb=16)
TORCH_MOMENTS = ("snapshot",)  # torch's import makes its kernels slow to start: one trial


def ci_plans(seed: int = 20261123) -> list[Plan]:
    """One trial per moment, torch for the tensor copy, NumPy for the others."""
    dice = Random(seed)
    return [
        Plan(
            index=i,
            model="torch" if moment in TORCH_MOMENTS else "numpy",
            moment=moment,
            kill_after=dice.randint(*CI.window(moment)),
            seed=dice.randrange(1 << 30),
        )
        for i, moment in enumerate(MOMENTS)
    ]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_kill_moment_resumes_exactly(emulator, tmp_path):
    plans = ci_plans()
    campaign = Campaign(emulator, str(tmp_path / "work"), CI)
    try:
        results = [campaign.trial(plan) for plan in plans]
    finally:
        campaign.close()
    failed = [r.line(CI) for r in results if r.problems(CI)]
    assert not failed, "\n".join(failed)
    # The kills landed where they were aimed; some left a half-committed checkpoint (blobs
    # without a manifest) on Drive, which the resumed runs then pruned.
    assert all(r.killed and r.detail for r in results)
    assert any(r.orphans_after_kill for r in results)


def test_plans_cover_every_moment_then_follow_the_weights():
    plans = plan_trials(300, seed=5, models=("torch", "numpy"), cfg=CI)
    assert sorted(p.moment for p in plans[: len(MOMENTS)]) == sorted(MOMENTS)
    counts = {m: sum(p.moment == m for p in plans) for m in MOMENTS}
    assert counts["step"] < min(n for m, n in counts.items() if m != "step")
    assert {p.model for p in plans} == {"torch", "numpy"}
    for p in plans:
        low, high = CI.window(p.moment)
        assert low <= p.kill_after <= high
    assert plans == plan_trials(300, seed=5, models=("torch", "numpy"), cfg=CI)


def test_the_drive_side_check_tells_complete_checkpoints_from_broken_ones(emulator, tmp_path):
    """What a trial trusts: a manifest counts only with every blob on Drive as promised."""
    client = connect(url=emulator.url, token=emulator.token)
    namespace = {"w": np.zeros(8)}
    store = DriveCheckpointStore(client, run_folder("r"), run="r")
    with checkpointed("r", save=["w"], namespace=namespace, every="1", keep=5, store=store) as ck:
        for _ in ck.range(3):
            namespace["w"] += 1
            ck.wait()
    whole = inspect_run(client, "r", scratch=str(tmp_path / "scratch"))
    assert [(m.step, m.complete) for m in whole.manifests] == [(1, True), (2, True), (3, True)]
    assert whole.newest.step == 3 and not whole.orphans() and whole.pending_after(3) is None
    newest = client.read_bytes(client.stat(f"{run_folder('r')}/{whole.newest.name}"))
    client.delete_ids([Manifest.from_json(newest).blobs[0].file_id])
    client.ensure_folder(f"{run_folder('r')}/step-000000004-0badf00d")
    broken = inspect_run(client, "r")
    assert [m.step for m in broken.complete] == [1, 2] and broken.newest.step == 2
    assert "DriveNotFound" in broken.manifests[-1].why
    assert broken.orphans() == {"0badf00d"} and broken.pending_after(2) == 3
    client.close()


def test_the_killer_recognises_checkpoint_requests(emulator, tmp_path):
    """The harness's own check: blob, manifest and batch-delete requests are told apart."""
    seen = []

    def observer(event):
        seen.append(request_kind(event))

    client = connect(url=emulator.url, token=emulator.token)
    emulator.faults.on_request(observer)
    try:
        big = tmp_path / "torch.pt"
        big.write_bytes(b"x" * (client.multipart_limit + 1))
        client.upload(str(big), "run/step-000000005-0a1b2c3d/torch.pt", replace=False)
        client.upload(b"{}", "run/step-000000005-0a1b2c3d/values.json", replace=False)
        manifest = client.upload(b"{}", "run/manifest-000000005-0a1b2c3d.json", replace=False)
        client.delete_ids([manifest.file.id])
    finally:
        emulator.faults.on_request(None)
        client.close()
    kinds = [k for k in seen if k is not None]
    assert ("resumable", "torch.pt") in kinds
    assert any(kind == "chunk" for kind, _ in kinds)
    assert ("multipart", "values.json") in kinds
    assert ("multipart", "manifest-000000005-0a1b2c3d.json") in kinds
    assert ("batch", "1") in kinds


def test_the_killer_kills_at_the_manifest_and_drops_it(emulator, drive):
    """Armed for a manifest upload, it SIGKILLs the target process there; the upload is lost."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    killer = Killer("manifest_upload", Random(0))
    killer.variant, killer.pid, killer.armed, killer.late = "drop", sleeper.pid, True, True

    def upload(name):
        media = MediaInMemoryUpload(b"{}", mimetype="application/json", resumable=False)
        return drive.files().create(body={"name": name}, media_body=media).execute()

    emulator.faults.on_request(killer)
    try:
        upload("values.json")
        assert not killer.fired.is_set()
        with pytest.raises(TRANSPORT_ERRORS):
            upload("manifest-000000005-0a1b2c3d.json")
    finally:
        emulator.faults.on_request(None)
        sleeper.kill()
    assert killer.fired.is_set() and "dropped" in killer.detail, killer.detail
    assert sleeper.wait(timeout=10) == -signal.SIGKILL
    assert killer.settle(timeout=5)
    names = [f["name"] for f in drive.files().list().execute(num_retries=2)["files"]]
    assert names == ["values.json"]
