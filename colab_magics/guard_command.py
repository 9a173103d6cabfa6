"""``%drive_guard`` as plain Python: turn the guard on or off, watch paths, say its state."""

from __future__ import annotations

from colab_magics.guard import Guard

ACTIONS = ("on", "off", "status", "watch", "unwatch")


def guard_command(
    guard: Guard, action: str, path: str | None = None, *, warn: bool = False, depth: int = 0
) -> list[str]:
    """Apply ``%drive_guard ACTION [PATH]`` to ``guard``; the lines to show (with ``status``,
    what a check of the watched paths finds now), its state last. ``ValueError`` for a
    missing or bad path; ``warn`` goes with ``on``, ``depth`` with ``watch``."""
    if action not in ACTIONS:
        raise ValueError(f"%drive_guard: the action is one of {', '.join(ACTIONS)}, not {action!r}")
    if action in ("watch", "unwatch") and not path:
        raise ValueError(f"%drive_guard {action} needs a mount path")
    lines = []
    if action == "on":
        guard.enabled, guard.warn = True, warn
    elif action == "off":
        guard.enabled = False
    elif action == "watch":
        guard.watch(path, depth=depth)
    elif action == "unwatch":
        guard.unwatch(path)
    else:
        lines = [finding.message for finding in guard.check_paths([])]
    state = "off" if not guard.enabled else ("on (warn only)" if guard.warn else "on")
    watched = ", ".join(sorted(guard.watched)) or "nothing"
    return [*lines, f"Drive guard {state}; mount {guard.mount_root}; watching {watched}."]
