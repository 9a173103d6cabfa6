"""``SyncReport``: what one push, pull or extraction did (or, with ``dry_run``, would do)."""

from __future__ import annotations

import dataclasses

from colab_magics.units import format_bytes, format_seconds, plural


@dataclasses.dataclass
class SyncReport:
    """Counts, bytes and per-file errors of one run.

    ``uploaded``/``downloaded`` count files moved (``replaced`` of the uploads were new content
    for an existing Drive file), ``skipped`` those already identical (size and md5), ``deleted``
    Drive files removed by ``delete=True``, ``extracted`` archive entries written. ``hashed``
    counts local files whose md5 had to be computed (the rest came from the cache).
    ``duplicates`` maps a path that names several Drive files to their ids, the one used
    first. ``plan`` lists ``(action, path, bytes)`` for a dry run. ``native`` lists the Google
    Docs, Sheets and shortcuts a pull left out: they have no bytes to download, only exports.
    """

    uploaded: int = 0
    replaced: int = 0
    downloaded: int = 0
    skipped: int = 0
    deleted: int = 0
    extracted: int = 0
    folders_created: int = 0
    bytes: int = 0
    hashed: int = 0
    seconds: float = 0.0
    api_calls: int = 0
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    duplicates: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    plan: list[tuple[str, str, int]] = dataclasses.field(default_factory=list)
    native: list[str] = dataclasses.field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def check(self) -> SyncReport:
        """This report, or :class:`SyncAborted` naming the failures if there were any."""
        if self.errors:
            raise SyncAborted(f"{self.summary()}. Run it again to retry the failed files.", self)
        return self

    def summary(self) -> str:
        """One line for a notebook or a log."""
        verb = "would" if self.dry_run else "did"
        parts = [
            f"{name} {value}"
            for name, value in (
                ("uploaded", self.uploaded),
                ("replaced", self.replaced),
                ("downloaded", self.downloaded),
                ("extracted", self.extracted),
                ("deleted", self.deleted),
                ("skipped", self.skipped),
            )
            if value
        ]
        text = f"{verb}: {', '.join(parts) or 'nothing'}; {format_bytes(self.bytes)}"
        if not self.dry_run:
            text += f" in {format_seconds(self.seconds)}, {self.api_calls} API calls"
        if self.duplicates:
            text += f"; {plural(len(self.duplicates), 'duplicate name')} on Drive"
        if self.native:
            text += (
                f"; left out {plural(len(self.native), 'Google Docs/Sheets/shortcut file')} "
                f"(no bytes to download: export from Drive), first: {self.native[0]}"
            )
        if self.errors:
            first = next(iter(self.errors.items()))
            text += f"; {len(self.errors)} failed (first: {first[0]}: {first[1]})"
        return text

    def plan_lines(self) -> list[str]:
        """A dry run's plan, one ``action  size  path`` line each, in path order."""
        return [
            f"{action:<8} {format_bytes(size) if action != 'mkdir' else '':>9}  {path}"
            for action, path, size in sorted(self.plan, key=lambda p: (p[1], p[0]))
        ]

    def plan_summary(self, limit: int = 20) -> list[str]:
        """A dry run for a reader: what it would do in counts and bytes, the first ``limit``
        actions, then how many more."""
        counts: dict[str, list[int]] = {}
        for action, _, size in self.plan:
            entry = counts.setdefault(action, [0, 0])
            entry[0] += 1
            entry[1] += size
        parts = []
        for action, (count, size) in sorted(counts.items(), key=lambda kv: _action_order(kv[0])):
            if action == "mkdir":
                parts.append(f"create {plural(count, 'folder')}")
            else:
                parts.append(f"{action} {plural(count, 'file')} ({format_bytes(size)})")
        lines = [f"Plan: {', '.join(parts) or 'nothing to do'}."]
        shown = self.plan_lines()
        lines += shown[:limit]
        if len(shown) > limit:
            lines.append(f"… and {len(shown) - limit} more")
        return lines


def _action_order(action: str) -> tuple[int, str]:
    order = ("mkdir", "upload", "replace", "delete")
    return (order.index(action) if action in order else len(order), action)


class SyncAborted(RuntimeError):
    """The run stopped on a failure every further file would share; ``report`` says how far
    it got (files done are kept: run it again to continue)."""

    def __init__(self, message: str, report: SyncReport | None = None) -> None:
        super().__init__(message)
        self.report = report
