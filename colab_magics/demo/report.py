"""What the demo claims, checked from what the notebook printed, and the report it prints."""

from __future__ import annotations

import dataclasses
import re

STEP_LINE = re.compile(r"^step (\d+)/(\d+)\b", re.M)
RESUMED = re.compile(r"^Resumed from step (\d+) \(([^)]*)\)", re.M)
WHERE = re.compile(r"^Resumed from step \d+ .*, in epoch (\d+) after batch (\d+)/(\d+)$", re.M)
FRESH = re.compile(r"^No confirmed checkpoint: starting at step 0", re.M)
FINISHED = re.compile(r"^trained to step (\d+)/(\d+)", re.M)
DIGEST = re.compile(r"^final weights sha256 ([0-9a-f]{64})$", re.M)
LEASE_WAIT = re.compile(r"^lease: (?:waited ([\d.]+) s for runtime (.+)|no wait)$", re.M)


def last_step(text: str) -> tuple[int, int] | None:
    """The last ``step N/TOTAL`` line in ``text``, as (N, TOTAL)."""
    found = STEP_LINE.findall(text)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


@dataclasses.dataclass
class Runtime:
    """One kernel's run through the notebook: what it printed and how it ended."""

    label: str
    text: str = ""
    errors: list[str] = dataclasses.field(default_factory=list)
    killed_at: int | None = None
    wiped: bool = False
    seconds: float = 0.0
    pid: int | None = None

    @property
    def resumed(self) -> tuple[int, str] | None:
        found = RESUMED.search(self.text)
        return (int(found.group(1)), found.group(2)) if found else None

    @property
    def resumed_in_epoch(self) -> tuple[int, int, int] | None:
        """(epoch, batches done in it, batches an epoch) where the notebook says so."""
        found = WHERE.search(self.text)
        return (int(found[1]), int(found[2]), int(found[3])) if found else None

    @property
    def started_fresh(self) -> bool:
        return FRESH.search(self.text) is not None

    @property
    def finished(self) -> tuple[int, int] | None:
        found = FINISHED.search(self.text)
        return (int(found.group(1)), int(found.group(2))) if found else None

    @property
    def digest(self) -> str | None:
        found = DIGEST.search(self.text)
        return found.group(1) if found else None

    @property
    def lease_wait(self) -> tuple[float, str] | None:
        """(seconds, holder) the training cell waited for another runtime's lease; (0, "")
        when it waited for none; None when the runtime did not say."""
        found = LEASE_WAIT.search(self.text)
        if found is None:
            return None
        return (float(found.group(1)), found.group(2)) if found.group(1) else (0.0, "")


@dataclasses.dataclass
class Claim:
    ok: bool
    text: str


def claims(killed: Runtime, resumed: Runtime, reference: Runtime, total: int) -> list[Claim]:
    """The demo's promises, each checked; every one must hold for the demo to pass."""
    out = []
    n = killed.killed_at
    out.append(
        Claim(
            n is not None and 0 < n < total and killed.wiped and not killed.errors,
            f"killed runtime 1 with SIGKILL at step {n}/{total}; its local disk wiped"
            if n is not None
            else "runtime 1 was never killed mid-training",
        )
    )
    got = resumed.resumed
    if got is None:
        out.append(Claim(False, "runtime 2 did not resume from a checkpoint"))
    else:
        step, age = got
        redone = n - step if n is not None else None
        where, mid_epoch = "", True
        if resumed.resumed_in_epoch is not None:
            epoch, batch, per_epoch = resumed.resumed_in_epoch
            mid_epoch = 0 < batch < per_epoch
            where = f"; in the middle of epoch {epoch}, after batch {batch}/{per_epoch}"
            if not mid_epoch:
                where = f"; at the start of epoch {epoch}, not in the middle of one"
        out.append(
            Claim(
                n is not None and 0 < step <= n and mid_epoch,
                f"runtime 2, on an empty disk, resumed from confirmed step {step} ({age}): "
                f"{redone} steps redone{where}",
            )
        )
    done = resumed.finished
    out.append(
        Claim(
            done == (total, total) and not resumed.errors,
            f"runtime 2 finished: step {done[0]}/{done[1]}, no errors"
            if done and not resumed.errors
            else f"runtime 2 did not finish cleanly: {'; '.join(resumed.errors) or 'no result'}",
        )
    )
    same = resumed.digest is not None and resumed.digest == reference.digest
    finished = reference.finished == (total, total)
    clean = reference.started_fresh and finished and not reference.errors
    out.append(
        Claim(
            same and clean,
            f"final weights identical to an uninterrupted run (sha256 {resumed.digest[:16]}…)"
            if same and clean
            else f"final weights differ from an uninterrupted run: resumed {resumed.digest}, "
            f"uninterrupted {reference.digest}"
            + ("" if clean else f" ({'; '.join(reference.errors) or 'it did not run cleanly'})"),
        )
    )
    return out


def lease_note(killed: Runtime, resumed: Runtime, ttl: float) -> str:
    """What taking the run's lease cost runtime 2: the wait for the killed runtime's lease."""
    wait = resumed.lease_wait
    setting = f"lease TTL {ttl:g} s in the demo, 30 s by default"
    if wait is None:
        return "runtime 2 did not report on the run's lease"
    seconds, holder = wait
    if not holder:
        return f"runtime 2 did not wait: runtime 1's lease on the run had lapsed ({setting})"
    whose = (
        "runtime 1's lease" if holder.endswith(f" pid {killed.pid}") else f"the lease of {holder}"
    )
    return f"runtime 2 waited {seconds:.1f} s for {whose} on the run to lapse ({setting})"


def render(
    found: list[Claim],
    runtimes: list[Runtime],
    seconds: float,
    notebook: str,
    notes: list[str] | tuple[str, ...] = (),
) -> str:
    lines = [f"  [{'ok' if c.ok else 'FAILED'}] {c.text}" for c in found]
    lines += [f"  {note}" for note in notes]
    parts = ", ".join(f"{r.label} {r.seconds:.1f} s" for r in runtimes)
    lines.append(f"  time taken: {seconds:.1f} s ({parts})")
    lines.append(f"  executed notebook (runtime 2, with outputs): {notebook}")
    verdict = "every claim holds" if all(c.ok for c in found) else "A CLAIM FAILED"
    return "\n".join(["", f"Demo report: {verdict}", *lines])
