"""The kill campaign's trials: SIGKILL a training kernel at chosen moments, resume, verify.

A trial trains a checkpointed cell in a real kernel (``DemoKernel``) against an in-process
emulator and kills the kernel with SIGKILL at one moment of a checkpoint's life:

=================  ===========================================================================
moment             how the kill is placed
=================  ===========================================================================
step               from outside, a random time after a step was printed (mid-step)
snapshot           from inside: a watcher thread SIGKILLs its own kernel while the training
                   thread is copying state in ``SnapshotBuffers.capture`` (a step boundary)
blob_upload        at a blob's upload request (resumable start, chunk PUT or multipart POST),
                   then the request is dropped or served to a dead client
before_manifest    just after the last blob's upload was answered, before the manifest is sent
manifest_upload    at the manifest's upload request, then dropped or served to a dead client
retention_delete   at the first or second batch delete of a prune, then dropped or served
=================  ===========================================================================

The upload and delete moments are placed by the emulator's request observer
(``handle.faults.on_request``). A new kernel then runs the same cells in a new empty working
directory; the trial checks from the Drive side what it resumed from, the final weights against
an uninterrupted run's, the work redone, and what retention left in the run's folder.
``bench/kill_campaign.py`` runs many trials; ``test_kill_campaign.py`` a few.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from random import Random
from typing import Any

from colab_magics.checkpoint.lease import LEASE_ENV, drive_time
from colab_magics.checkpoint.manifest import Manifest, ManifestError
from colab_magics.demo.kernel import DemoKernel, KernelDied
from colab_magics.drive import DriveClient, DriveError, DriveNotFound, connect
from colab_magics.emulator import EmulatorHandle
from colab_magics.emulator.faults import DROP, RequestEvent
from tests.e2e.runtimes import runtime_env, stream
from tests.e2e.test_kernel_kill import NUMPY, REPORT, TORCH, TRAIN, _last_step

MOMENTS = (
    "step",
    "snapshot",
    "blob_upload",
    "before_manifest",
    "manifest_upload",
    "retention_delete",
)
# Weighted toward the moments where a careless commit protocol breaks.
WEIGHTS = {"step": 1, "snapshot": 2, "blob_upload": 2, "before_manifest": 2,
           "manifest_upload": 2, "retention_delete": 2}  # fmt: skip
BLOB_NAMES = ("torch.pt", "arrays.npz", "objects.pkl", "values.json")
LAST_BLOB = "values.json"  # written and uploaded last of a snapshot's blobs
_MANIFEST = re.compile(r"^manifest-(\d+)-([0-9a-f]+)\.json$")
_BLOB_FOLDER = re.compile(r"^step-(\d+)-([0-9a-f]+)$")
_NAME = re.compile(rb'"name"\s*:\s*"([^"]*)"')


@dataclasses.dataclass(frozen=True)
class Config:
    """The training cell's shape: steps, cadence, retention, and the state's size."""

    steps: int = 30
    every: int = 5
    step_seconds: float = 0.3
    """An interval of 1.5 s: on two shared cores a 24 MB checkpoint can take over 1 s to
    persist, and a slower persist than the interval loses more than one interval."""
    keep: int = 2
    ballast_mb: int = 24
    """Extra tensors/arrays saved with the model, so a snapshot copy and a blob upload take
    measurable time (and a blob goes up in several resumable chunks)."""
    lease_seconds: float = 2.0

    def window(self, moment: str) -> tuple[int, int]:
        """Steps after which the kill is armed: after the first checkpoint, and early enough
        that the moment still comes; retention deletes start once ``keep`` are confirmed."""
        low = self.every * (self.keep + 1) - 1 if moment == "retention_delete" else self.every + 1
        return low, self.steps - 2 * self.every - 1


@dataclasses.dataclass(frozen=True)
class Model:
    """A training cell's pieces (see ``tests/e2e/test_kernel_kill.py``) plus ballast."""

    name: str
    setup: str
    save: str
    step: str
    digest: str


def model(name: str, ballast_mb: int) -> Model:
    """The torch or numpy cell of the kernel-kill test, with ``ballast_mb`` MB more state."""
    floats = ballast_mb * (1 << 20) // 16  # four float32 rows
    if name == "torch":
        base = TORCH
        setup = (
            "ballast = torch.nn.Module()\n"
            "for i in range(4):\n"
            f"    ballast.register_buffer(f'b{{i}}', torch.zeros({floats}))\n"
        )
        step = "    getattr(ballast, f'b{step % 4}').add_(loss.detach())\n"
        digest = "b''.join(v.numpy().tobytes() for v in ballast.state_dict().values())"
    elif name == "numpy":
        base = NUMPY
        setup = f"ballast = np.zeros((4, {floats}), dtype=np.float32)\n"
        step = "    ballast[step % 4] += np.float32(grad[0])\n"
        digest = "ballast.tobytes()"
    else:
        raise ValueError(f"unknown model {name!r}: torch or numpy")
    return Model(
        name=name,
        setup=base["setup"] + setup,
        save=base["save"] + ",ballast",
        step=base["step"].rstrip() + "\n" + step,
        digest=f"{base['digest']} + {digest}",
    )


def cells(m: Model, run: str, cfg: Config) -> tuple[str, str, str]:
    """Setup, training and report cells for run ``run``."""
    train = TRAIN.replace("RUN", run).replace("SAVE", m.save)
    train = train.replace("--every EVERY", f"--every {cfg.every} --keep {cfg.keep}")
    train = train.replace("STEP_SECONDS", str(cfg.step_seconds)).replace("STEPS", str(cfg.steps))
    train = train.replace("STEP", m.step.rstrip())
    report = REPORT.replace("EXPR", m.digest)
    report += 'print("FROM", ckpt.restored_from.location if ckpt.restored_from else None)\n'
    return m.setup, train, report


def run_folder(run: str) -> str:
    return f"colab_magics/checkpoints/{run}"


# -- the snapshot moment: a watcher inside the kernel ----------------------------------------

WATCHER = """
def _start_snapshot_killer(after, late, marker, seed):
    import os, random, signal, sys, threading, time
    from colab_magics.checkpoint.session import Checkpoint
    from colab_magics.checkpoint.state import SnapshotBuffers
    snapshot = Checkpoint._snapshot.__code__
    copying = {SnapshotBuffers.capture.__code__, SnapshotBuffers._copy_tensor.__code__,
               SnapshotBuffers._copy_array.__code__}
    dice = random.Random(seed)  # never the global generator: it is checkpointed state

    def watch():
        me = threading.get_ident()
        while True:
            time.sleep(0.0005)
            for ident, frame in sys._current_frames().items():
                inside, step = [], None
                while frame is not None and ident != me:
                    if frame.f_code in copying:
                        inside.append(frame.f_code.co_name)
                    elif frame.f_code is snapshot:
                        step = frame.f_locals["self"].step
                    frame = frame.f_back
                due = step is not None and step - 1 >= after
                if inside and due and (step - 1 >= late or dice.random() < 0.3):
                    with open(marker, "w") as f:
                        f.write(f"{step} {' < '.join(inside)}")
                    os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="snapshot-killer", daemon=True).start()

_start_snapshot_killer(AFTER, LATE, MARKER, SEED)
del _start_snapshot_killer
"""
SNAPSHOT_MARKER = "killed-in-snapshot.txt"


# -- the upload and delete moments: the emulator's request observer --------------------------


def request_kind(event: RequestEvent) -> tuple[str, str] | None:
    """What a checkpointing kernel's request is: ``(kind, name or detail)``, or None.

    Kinds: ``chunk`` (a resumable PUT), ``resumable`` and ``multipart`` (upload starts, with
    the file's name from the metadata), ``batch`` (with its number of DELETE parts).
    """
    if event.path.startswith("/upload/"):
        if event.method == "PUT" and "upload_id" in event.query:
            return "chunk", event.headers.get("content-range", "")
        kind = (event.query.get("uploadType") or [""])[0]
        if event.method == "POST" and kind in ("resumable", "multipart"):
            found = _NAME.search(event.body() or b"")
            return kind, found.group(1).decode() if found else ""
    if event.method == "POST" and event.path.startswith("/batch"):
        return "batch", str((event.body() or b"").count(b"\nDELETE "))
    return None


class Killer:
    """Emulator observer: SIGKILLs the kernel at the trial's moment once armed.

    It also counts the requests being served, so the trial can wait until everything the dead
    kernel had sent has settled before it looks at Drive.
    """

    def __init__(self, moment: str, dice: Random) -> None:
        self.moment = moment
        self.dice = dice
        self.pid: int | None = None
        self.step = -1
        self.armed = False
        self.late = False  # the moment must come now: take the first chance
        self.fired = threading.Event()
        self.detail = ""
        self.variant = dice.choice(("drop", "serve"))
        self.batch_target = dice.choice((1, 2))
        self._batches = 0
        self._last_blob = ""
        self._busy = 0
        self._idle = threading.Condition()

    # The observer itself.
    def __call__(self, event: RequestEvent) -> Any:
        kind = request_kind(event)
        if kind is not None:
            self._note(*kind)
        answer = None
        if self.armed and not self.fired.is_set() and kind is not None:
            answer = self._decide(*kind)
        if answer == DROP:
            return DROP
        with self._idle:
            self._busy += 1
        return self._finished if answer is None else answer

    def _note(self, kind: str, name: str) -> None:
        """Keep track of which blob is going up and which batch of a prune this is."""
        if kind in ("resumable", "multipart") and name in BLOB_NAMES:
            self._last_blob = name
        elif kind == "multipart" and _MANIFEST.match(name):
            self._batches = 0  # the prune that follows this commit counts from here
        elif kind == "batch" and name != "0":
            self._batches += 1

    def _decide(self, kind: str, name: str) -> Any:
        chance = self.late or self.dice.random() < 0.5
        blob = kind == "chunk" or (kind in ("resumable", "multipart") and name in BLOB_NAMES)
        if self.moment == "blob_upload" and blob and chance:
            what = f"{self._last_blob} {name}" if kind == "chunk" else name
            return self._kill_then(f"at {kind} {what}")
        if self.moment == "before_manifest" and kind == "multipart" and name == LAST_BLOB:

            def after_answer(status: str | None) -> None:
                self._kill(f"after {name} was answered {status}")
                self._finished(status)

            return after_answer
        if self.moment == "manifest_upload" and kind == "multipart" and _MANIFEST.match(name):
            return self._kill_then(f"at {name}")
        # A prune whose first batch deleted manifests always sends a second (their blob
        # folders), so the target batch comes even late in the run.
        prune = self.moment == "retention_delete" and kind == "batch" and name != "0"
        if prune and self._batches == self.batch_target:
            return self._kill_then(f"at prune batch {self._batches} ({name} deletes)")
        return None

    def _kill_then(self, what: str) -> Any:
        self._kill(f"{what}, then {'dropped' if self.variant == 'drop' else 'served'}")
        return DROP if self.variant == "drop" else None

    def _kill(self, what: str) -> None:
        if self.fired.is_set() or self.pid is None:
            return
        os.kill(self.pid, signal.SIGKILL)
        _wait_dead(self.pid)
        self.detail = what
        self.fired.set()

    def _finished(self, status: str | None) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    def settle(self, timeout: float = 30) -> bool:
        """Wait until no request is being served (what the dead kernel sent has landed)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy <= 0, timeout)


def _wait_dead(pid: int, timeout: float = 10) -> None:
    """Until ``pid`` is a zombie or gone: a request let through afterwards has no client."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.002)


# -- what Drive holds ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Held:
    """One manifest in the run's folder, checked blob by blob against Drive."""

    name: str
    step: int
    created_time: str
    complete: bool
    why: str = ""
    persist_seconds: float | None = None
    """From the snapshot (the manifest's ``created``) to Drive holding the manifest."""


@dataclasses.dataclass(frozen=True)
class DriveView:
    """The run's folder at one moment: manifests (checked) and blob folders, by tag."""

    manifests: tuple[Held, ...]
    blob_folders: dict[str, int]
    """Tag -> step of every ``step-NNN-tag`` folder."""

    @property
    def complete(self) -> list[Held]:
        return [m for m in self.manifests if m.complete]

    @property
    def newest(self) -> Held | None:
        """The newest complete checkpoint, as a restore ranks them (Drive's createdTime)."""
        return max(self.complete, key=lambda m: (m.created_time, m.step), default=None)

    def orphans(self) -> set[str]:
        """Blob folders that no manifest names."""
        return set(self.blob_folders) - {_tag(m.name) for m in self.manifests}

    def pending_after(self, step: int) -> int | None:
        """The oldest step past ``step`` whose blobs went up without a complete manifest:
        the checkpoint that was being persisted when the kernel died."""
        complete = {_tag(m.name) for m in self.complete}
        steps = [s for tag, s in self.blob_folders.items() if tag not in complete and s > step]
        return min(steps, default=None)

    def persist_seconds(self) -> list[float]:
        return [m.persist_seconds for m in self.complete if m.persist_seconds is not None]


def _tag(manifest_name: str) -> str:
    return _MANIFEST.match(manifest_name).group(2)


def inspect_run(client: DriveClient, run: str, scratch: str | None = None) -> DriveView:
    """Read the run's folder: a manifest is complete only if every blob it names exists on
    Drive with the size and md5 it promises; with ``scratch``, also once downloaded there."""
    try:
        children = client.listdir(run_folder(run))
    except DriveNotFound:
        return DriveView((), {})
    manifests, folders = [], {}
    for file in children:
        if (found := _BLOB_FOLDER.match(file.name)) and file.is_folder:
            folders[found.group(2)] = int(found.group(1))
        elif (found := _MANIFEST.match(file.name)) and not file.is_folder:
            why, persist = _incomplete(client, file, run, scratch)
            step = int(found.group(1))
            manifests.append(Held(file.name, step, file.created_time, not why, why, persist))
    return DriveView(tuple(sorted(manifests, key=lambda m: m.created_time)), folders)


def _incomplete(
    client: DriveClient, file: Any, run: str, scratch: str | None
) -> tuple[str, float | None]:
    """Why the manifest ``file`` is not a complete checkpoint ("" if it is); persist time."""
    persist = None
    try:
        manifest = Manifest.from_json(client.read_bytes(file))
        persist = drive_time(file.created_time) - manifest.created
        if manifest.run != run:
            return f"run {manifest.run!r}", persist
        for blob in manifest.blobs:
            held = client.file(blob.file_id)
            if (held.size, held.md5) != (blob.size, blob.md5):
                return f"{blob.name}: Drive has {held.size} B md5 {held.md5}", persist
            if scratch is not None:  # the download verifies the md5 of the bytes it got
                os.makedirs(scratch, exist_ok=True)
                client.download(held, os.path.join(scratch, blob.name))
    except (DriveError, ManifestError) as exc:
        return f"{type(exc).__name__}: {exc}", persist
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return "", persist


# -- one trial -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one trial does: which model, which moment, armed after which step."""

    index: int
    model: str
    moment: str
    kill_after: int
    seed: int

    @property
    def run(self) -> str:
        return f"kill-{self.index:04d}-{self.model}"


def plan_trials(count: int, seed: int, models: Sequence[str], cfg: Config) -> list[Plan]:
    """``count`` trials: every moment once first (when there are enough), then by weight."""
    dice = Random(seed)
    moments = list(MOMENTS) if count >= len(MOMENTS) else []
    dice.shuffle(moments)
    weights = [WEIGHTS[m] for m in MOMENTS]
    moments += dice.choices(MOMENTS, weights, k=count - len(moments))
    plans = []
    for index, moment in enumerate(moments):
        low, high = cfg.window(moment)
        plans.append(
            Plan(
                index=index,
                model=models[index % len(models)],
                moment=moment,
                kill_after=dice.randint(low, high),
                seed=dice.randrange(1 << 30),
            )
        )
    return plans


@dataclasses.dataclass
class Result:
    """What one trial found; ``problems()`` lists what breaks a promise."""

    index: int
    model: str
    moment: str
    kill_after: int
    detail: str = ""
    killed: bool = False
    killed_at: int = -1
    restored: int | None = None
    restored_from: str | None = None
    newest_confirmed: str | None = None
    newest_step: int | None = None
    resumed_valid: bool = False
    identical: bool = False
    redone: int = 0
    in_flight: int = 0
    complete_after_kill: int = 0
    orphans_after_kill: int = 0
    final_complete: int = 0
    final_orphans: int = 0
    persist_seconds: list[float] = dataclasses.field(default_factory=list)
    """Snapshot to manifest on Drive, for each checkpoint Drive held after the kill."""
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    def problems(self, cfg: Config) -> list[str]:
        """Broken promises, then missed goals."""
        return self.failures(cfg) + self.goal_misses(cfg)

    def failures(self, cfg: Config) -> list[str]:
        """A kill that was not survived: wrong or unverified resume, other weights, leftovers."""
        found = []
        if self.error:
            found.append(self.error)
        if not self.killed:
            found.append(f"not killed at {self.moment}")
        if not self.resumed_valid:
            found.append(f"resumed from {self.restored_from}, not a verified checkpoint")
        if self.restored_from != self.newest_confirmed:
            found.append(
                f"resumed from {self.restored_from}, the newest confirmed before the restart "
                f"was {self.newest_confirmed}"
            )
        if not self.identical:
            found.append("final weights differ from the uninterrupted run's")
        if self.redone < 0:
            found.append(f"resumed at step {self.restored}, past the kill at {self.killed_at}")
        if self.complete_after_kill > cfg.keep + 1:
            found.append(f"{self.complete_after_kill} complete checkpoints after the kill")
        if self.final_complete > cfg.keep or self.final_orphans:
            found.append(
                f"after the resumed run: {self.final_complete} checkpoints (keep {cfg.keep}), "
                f"{self.final_orphans} orphan blob folders"
            )
        return found + self.notes

    def goal_misses(self, cfg: Config) -> list[str]:
        """Work redone beyond one interval plus the steps run while a checkpoint persisted
        (a persist slower than the interval, say on a loaded machine)."""
        if self.redone - self.in_flight <= cfg.every:
            return []
        return [
            f"redid {self.redone} steps: more than one interval ({cfg.every}) plus the "
            f"{self.in_flight} run while the next checkpoint was being persisted"
        ]

    def line(self, cfg: Config) -> str:
        failures, misses = self.failures(cfg), self.goal_misses(cfg)
        verdict = "FAIL: " + "; ".join(failures) if failures else "ok"
        verdict += "; goal missed: " + "; ".join(misses) if misses else ""
        restored = "-" if self.restored is None else self.restored
        return (
            f"#{self.index:<4} {self.model:<5} {self.moment:<16} killed at step "
            f"{self.killed_at:>3}, resumed at {restored!s:>3}, redid {self.redone:>2} "
            f"({self.redone / cfg.every:.1f} intervals), {self.seconds:4.1f} s  {verdict}"
            + (f"  [{self.detail}]" if self.detail else "")
        )


class Campaign:
    """Trials against one emulator; the uninterrupted runs' digests are made once per model."""

    def __init__(self, handle: EmulatorHandle, workdir: str, cfg: Config) -> None:
        self.handle = handle
        self.workdir = workdir
        self.cfg = cfg
        self.client = connect(url=handle.url, token=handle.token)
        self._expected: dict[str, str] = {}

    def close(self) -> None:
        self.client.close()

    def model(self, name: str) -> Model:
        return model(name, self.cfg.ballast_mb)

    def _cwd(self, name: str) -> str:
        path = os.path.join(self.workdir, name)
        os.makedirs(path)
        return path

    def _kernel(self, cwd: str) -> DemoKernel:
        env = {**runtime_env(self.handle, cwd), LEASE_ENV: str(self.cfg.lease_seconds)}
        return DemoKernel(cwd, env, log=f"{cwd}.log")

    def expected(self, name: str) -> str:
        """The final digest of an uninterrupted run of model ``name``."""
        if name not in self._expected:
            cwd = self._cwd(f"straight-{name}")
            digest, restored, _ = self.finish(cwd, name, f"straight-{name}")
            if restored is not None:
                raise RuntimeError("the uninterrupted run found a checkpoint to resume from")
            self._expected[name] = digest
            shutil.rmtree(cwd)
            os.remove(f"{cwd}.log")
        return self._expected[name]

    def finish(self, cwd: str, name: str, run: str) -> tuple[str, int | None, str | None]:
        """Run the cells to the end in a new kernel: (digest, restored step, manifest name)."""
        setup, train, report = cells(self.model(name), run, self.cfg)
        kernel = self._kernel(cwd)
        try:
            _run_ok(kernel, setup)
            _run_ok(kernel, train, timeout=300)
            text = stream(_run_ok(kernel, report))
        finally:
            kernel.close()
        digest = re.search(r"DIGEST (\w+)", text).group(1)
        restored = re.search(r"RESTORED (\w+)", text).group(1)
        location = re.search(r"FROM (\S+)", text).group(1)
        return (
            digest,
            None if restored == "None" else int(restored),
            None if location == "None" else location.rsplit("/", 1)[-1],
        )

    def trial(self, plan: Plan) -> Result:
        """Kill, wipe, resume in a new empty directory, and check; never raises for a finding."""
        started = time.monotonic()
        result = Result(plan.index, plan.model, plan.moment, plan.kill_after)
        expected = self.expected(plan.model)
        try:
            before = self._kill(plan, result)
            self._resume(plan, result, expected, before)
        except Exception as exc:  # a finding to report, and the campaign goes on
            result.error = f"{type(exc).__name__}: {exc}"
        result.seconds = time.monotonic() - started
        if not result.failures(self.cfg):
            self.client.delete(run_folder(plan.run))  # keep the emulator's disk small
            shutil.rmtree(os.path.join(self.workdir, plan.run), ignore_errors=True)
        return result

    def _kill(self, plan: Plan, result: Result) -> DriveView:
        """Train until the kill; what Drive holds once the dead kernel's requests settled."""
        cfg = self.cfg
        setup, train, _ = cells(self.model(plan.model), plan.run, cfg)
        cwd = self._cwd(os.path.join(plan.run, "a"))
        dice = Random(plan.seed)
        killer = Killer(plan.moment, dice)
        self.handle.faults.on_request(killer)
        kernel = self._kernel(cwd)
        try:
            killer.pid = kernel.pid
            _run_ok(kernel, setup)
            if plan.moment == "snapshot":
                watcher = WATCHER.replace("AFTER", str(plan.kill_after))
                watcher = watcher.replace("LATE", str(cfg.window(plan.moment)[1]))
                watcher = watcher.replace("MARKER", repr(os.path.join(cwd, SNAPSHOT_MARKER)))
                _run_ok(kernel, watcher.replace("SEED", str(plan.seed)))
            _, late = cfg.window(plan.moment)
            try:
                kernel.run(train, timeout=300, on_stream=_watch(plan, killer, late, dice, cfg))
            except KernelDied:
                pass  # killed from the emulator's side or by the watcher inside
            result.killed = kernel.killed or killer.fired.is_set() or _marker(cwd) is not None
            if plan.moment == "snapshot":
                result.detail = f"in snapshot of step {_marker(cwd)}" if _marker(cwd) else ""
                result.killed = _marker(cwd) is not None
            elif plan.moment == "step":
                result.detail = "random time in a step"
            else:
                result.detail = killer.detail
                result.killed = killer.fired.is_set()
        finally:
            if not kernel.killed:
                kernel.close()
            if not killer.settle():
                result.notes.append("requests of the dead kernel still being served after 30 s")
            self.handle.faults.on_request(None)
        result.killed_at = _last_step(cwd)
        shutil.rmtree(cwd)  # a new runtime's disk is empty
        view = inspect_run(self.client, plan.run, scratch=f"{cwd}-verify")
        result.complete_after_kill = len(view.complete)
        result.orphans_after_kill = len(view.orphans())
        result.persist_seconds = view.persist_seconds()
        newest = view.newest
        result.newest_confirmed = newest.name if newest else None
        result.newest_step = newest.step if newest else None
        return view

    def _resume(self, plan: Plan, result: Result, expected: str, before: DriveView) -> None:
        cfg = self.cfg
        cwd = self._cwd(os.path.join(plan.run, "b"))
        digest, result.restored, result.restored_from = self.finish(cwd, plan.model, plan.run)
        result.identical = digest == expected
        restored = result.restored or 0
        # Valid: a checkpoint Drive held complete (every blob downloaded and verified) before
        # the new runtime started; none at all only when Drive held none.
        valid = {m.name for m in before.complete}
        if result.restored_from is None:
            result.resumed_valid = not valid and result.restored is None
        else:
            result.resumed_valid = result.restored_from in valid and restored % cfg.every == 0
        result.redone = result.killed_at + 1 - restored
        # The steps run while the checkpoint after the restored one was being persisted: since
        # its snapshot, from the Drive side (its blob folder) or, before its upload began, the
        # newest snapshot (a step's is surely taken once the next step has printed).
        pending = before.pending_after(restored)
        if pending is None:
            pending = max(restored, (result.killed_at // cfg.every) * cfg.every)
        result.in_flight = max(0, result.killed_at + 1 - pending)
        final = inspect_run(self.client, plan.run)
        result.final_complete = len(final.complete)
        result.final_orphans = len(final.orphans())
        incomplete = [f"{m.name}: {m.why}" for m in final.manifests if not m.complete]
        if incomplete:
            result.notes.append(f"incomplete manifests after the resumed run: {incomplete}")


def _watch(
    plan: Plan, killer: Killer, late: int, dice: Random, cfg: Config
) -> Callable[[str], bool]:
    """The stream callback: tracks the step, arms the killer, and does the mid-step kill."""

    def on_stream(text: str) -> bool:
        steps = [int(t) for t in text.split() if t.isdigit()]
        if not steps:
            return False
        killer.step = steps[-1]
        killer.late = killer.step >= late
        killer.armed = killer.step >= plan.kill_after
        if plan.moment == "step" and killer.armed:
            time.sleep(dice.uniform(0, cfg.step_seconds))  # anywhere inside the next step
            return True
        return False

    return on_stream


def _marker(cwd: str) -> str | None:
    path = os.path.join(cwd, SNAPSHOT_MARKER)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read().strip() or None


def _run_ok(kernel: DemoKernel, code: str, timeout: float = 120) -> Any:
    cell = kernel.run(code, timeout=timeout)
    if cell.error is not None:
        raise RuntimeError(f"cell failed: {cell.error}")
    return cell


# -- the summary -----------------------------------------------------------------------------


def summarize(results: Sequence[Result], cfg: Config) -> dict[str, Any]:
    """Per moment and overall: trials, resumed-from-valid %, identical %, redone work."""

    def figures(rows: Sequence[Result]) -> dict[str, Any]:
        redone = [r.redone for r in rows]
        persist = [p for r in rows for p in r.persist_seconds]
        return {
            "trials": len(rows),
            "killed_at_moment": sum(r.killed for r in rows),
            "resumed_valid_pct": _pct(sum(r.resumed_valid for r in rows), len(rows)),
            "resumed_newest_pct": _pct(
                sum(r.restored_from == r.newest_confirmed for r in rows), len(rows)
            ),
            "identical_pct": _pct(sum(r.identical for r in rows), len(rows)),
            "redone_max": max(redone, default=0),
            "redone_median": statistics.median(redone) if redone else 0,
            "redone_max_intervals": max(redone, default=0) / cfg.every,
            "redone_median_intervals": (statistics.median(redone) if redone else 0) / cfg.every,
            "within_one_interval_pct": _pct(sum(r.redone <= cfg.every for r in rows), len(rows)),
            "within_bound_pct": _pct(sum(not r.goal_misses(cfg) for r in rows), len(rows)),
            "beyond_in_flight_max": max((r.redone - r.in_flight for r in rows), default=0),
            "persist_seconds_median": round(statistics.median(persist), 3) if persist else None,
            "persist_seconds_max": round(max(persist), 3) if persist else None,
            "left_orphans_at_kill": sum(r.orphans_after_kill > 0 for r in rows),
            "orphans_left_at_end": sum(r.final_orphans > 0 for r in rows),
            "most_complete_after_kill": max((r.complete_after_kill for r in rows), default=0),
            "passed": sum(not r.failures(cfg) for r in rows),
        }

    by_moment = {m: figures([r for r in results if r.moment == m]) for m in MOMENTS}
    kept = {m: f for m, f in by_moment.items() if f["trials"]}
    return {"all": figures(results), "by_moment": kept}


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def table(summary: dict[str, Any]) -> str:
    """The summary as a fixed-width text table."""
    head = ("moment", "trials", "killed", "valid%", "newest%", "identical%", "redone max",
            "median", "max (intervals)", "in bound%", "persist max s", "passed")  # fmt: skip
    rows = [head]
    for name, f in [*summary["by_moment"].items(), ("all", summary["all"])]:
        rows.append((
            name, f["trials"], f["killed_at_moment"], f["resumed_valid_pct"],
            f["resumed_newest_pct"], f["identical_pct"], f["redone_max"], f["redone_median"],
            f"{f['redone_max_intervals']:.1f}", f["within_bound_pct"], f["persist_seconds_max"],
            f["passed"],
        ))  # fmt: skip
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in
                  enumerate(zip(row, widths, strict=True)))
        for row in rows
    )  # fmt: skip
