"""The kill campaign: SIGKILL a training kernel at random moments, resume, and verify.

Each trial trains a checkpointed cell (torch or NumPy, with extra state so snapshots and blob
uploads take measurable time) in a real kernel against an in-process emulator and SIGKILLs
it at a moment weighted toward the dangerous ones: mid-step, mid-snapshot, mid blob upload,
between the last blob and the manifest, during the manifest upload, mid retention delete. A
new kernel in a new empty directory resumes; the trial checks it resumed from the newest
checkpoint Drive held complete, that the final weights equal an uninterrupted run's, the work
redone, and what retention left behind. The trials are in ``tests/reliability/campaign.py``.

    python bench/kill_campaign.py --trials 100 --seed 1 --model both

Prints a line per trial and a summary table; writes everything as JSON to
``bench/out/kill_campaign-SEED-TRIALS.json``. A failed trial's kernel logs stay under
``bench/out/kill_campaign-SEED-work/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from colab_magics.emulator import start_emulator  # noqa: E402
from tests.reliability.campaign import Campaign, Config, plan_trials, summarize, table  # noqa: E402

OUT = os.path.join(ROOT, "bench", "out")
TUNABLE = ("steps", "every", "step_seconds", "keep", "ballast_mb")
"""Config fields given on the command line (``--step-seconds``...)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", choices=("torch", "numpy", "both"), default="both")
    defaults = Config()
    for name in TUNABLE:
        value = getattr(defaults, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    args = parser.parse_args(argv)
    cfg = Config(**{name: getattr(args, name) for name in TUNABLE})
    models = ("torch", "numpy") if args.model == "both" else (args.model,)
    plans = plan_trials(args.trials, args.seed, models, cfg)
    workdir = os.path.join(OUT, f"kill_campaign-{args.seed}-work")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    print(f"{len(plans)} trials, {', '.join(models)}, {cfg}", flush=True)
    started = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="kill-campaign-drive-") as drive:
        handle = start_emulator(drive)
        campaign = Campaign(handle, workdir, cfg)
        try:
            for name in models:
                campaign.expected(name)
            for plan in plans:
                result = campaign.trial(plan)
                results.append(result)
                print(result.line(cfg), flush=True)
        finally:
            campaign.close()
            handle.stop()
    seconds = time.monotonic() - started
    summary = summarize(results, cfg)
    print(table(summary))
    print(f"{len(results)} trials in {seconds / 60:.1f} min")
    args_given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python bench/kill_campaign.py", *args_given])
    document = {
        "command": command,
        "config": dataclasses.asdict(cfg),
        "seed": args.seed,
        "models": models,
        "seconds": round(seconds, 1),
        "summary": summary,
        "trials": [
            {**dataclasses.asdict(r), "failures": r.failures(cfg), "missed": r.goal_misses(cfg)}
            for r in results
        ],
    }
    path = os.path.join(OUT, f"kill_campaign-{args.seed}-{args.trials}.json")
    with open(path, "w") as f:
        json.dump(document, f, indent=1)
    print(f"wrote {os.path.relpath(path, ROOT)}")
    if not os.listdir(workdir):
        os.rmdir(workdir)
    return 0 if summary["all"]["passed"] == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
