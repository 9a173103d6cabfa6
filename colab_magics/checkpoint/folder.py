"""``--dir``: a folder that a trainer checkpoints into by itself, kept on Drive as units.

Each checkpoint the trainer writes (``checkpoint-300/``, ``epoch=2-step=300.ckpt``, Keras's
backup folder) is a unit (``dir_units.py``). A trainer's own save event (the hooks in
``colab_magics.trainers``) copies the unit aside at once and queues it; one background thread
uploads queued units in order, the file the framework reads last uploaded last, then the
unit's manifest. A deletion by the trainer (rotation) deletes the unit on Drive, and at most
``keep`` checkpoints stay there. Before the cell, the newest complete checkpoint a hook saved
is restored (with the best one Hugging Face's state names) and ``resume_path`` names it.

A trainer without hooks (a CLI writing a folder) is polled: each top-level entry is a unit
(the whole folder when it holds a marker itself), pushed once its files are unchanged between
two polls and, for a folder a known trainer wrote, its marker file is there; all of them are
restored, and an entry that disappears is deleted on Drive.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import threading
from collections.abc import Callable
from typing import Any

from colab_magics.checkpoint.dir_units import (
    WHOLE,
    UnitManifest,
    UnitStore,
    replace_local,
    unit_files,
)
from colab_magics.checkpoint.formats import IntegrityError
from colab_magics.checkpoint.lease import LeaseLost
from colab_magics.checkpoint.manifest import ManifestError
from colab_magics.drive import DriveClient, DriveError
from colab_magics.progress import Progress

MARKERS = frozenset({"trainer_state.json", "training_metadata.json"})
"""Files a trainer writes last into a checkpoint folder and reads first to resume from it:
Hugging Face ``Trainer``'s state and Keras ``BackupAndRestore``'s metadata. Uploaded last;
a polled folder holding files written before them but no marker is not yet a checkpoint."""
_BESIDE_MARKER = frozenset({"latest.weights.h5", "config.json", "model.safetensors"})
_STEP = re.compile(r"(?:^checkpoint-|step=)(\d+)")


def _step_of(unit: str) -> int | None:
    """The training step a checkpoint's name gives (``checkpoint-300``, ``...step=300.ckpt``)."""
    match = _STEP.search(os.path.basename(unit))
    return int(match.group(1)) if match else None


def _uploaded_last(name: str) -> bool:
    return name in MARKERS


def _counts(manifest: UnitManifest) -> bool:
    """Whether a unit is a checkpoint that ``--keep`` counts: one a hook saved, a folder or a
    ``.ckpt`` file; not a loose file a polled trainer keeps beside them (an index, a log)."""
    return bool(manifest.saved_by) or not manifest.is_file or manifest.unit.endswith(".ckpt")


def _beyond(units: list[UnitManifest], keep: int) -> list[UnitManifest]:
    """The checkpoints older than the newest ``keep``."""
    counted = sorted((m for m in units if _counts(m)), key=lambda m: m.created, reverse=True)
    return counted[keep:]


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def _signature(path: str) -> tuple | None:
    """What changes when a file of the entry at ``path`` changes (sizes and times)."""
    try:
        if os.path.isfile(path):
            st = os.stat(path)
            return ((st.st_size, st.st_mtime_ns),)
        found = []
        for top, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                st = os.stat(os.path.join(top, name))
                found.append(
                    (os.path.relpath(os.path.join(top, name), path), st.st_size, st.st_mtime_ns)
                )
        return tuple(found)
    except FileNotFoundError:
        return None


class FolderSync:
    """Restore, push and confirm the checkpoints a trainer writes into ``local``."""

    def __init__(
        self,
        local: str,
        remote: str,
        *,
        client: DriveClient,
        progress: Progress,
        run: str,
        staging: str,
        keep: int = 3,
        interval: float = 5.0,
    ) -> None:
        self.local = local
        self.remote = remote
        self.progress = progress
        self.keep = keep
        self.interval = interval
        self.store = UnitStore(client, remote, run=run)
        self.staging = os.path.join(staging, "dir-units")
        """Copies of units waiting for upload: the trainer may rotate or rewrite its own."""
        self.resume_path: str | None = None
        """The newest checkpoint restored (a local path) or None: ``resume_from_checkpoint``."""
        self.hook = ""
        """The trainer hook that reports saves ("" while polling)."""
        self._stale: list[UnitManifest] = []
        self._confirmed: dict[str, UnitManifest] = {}
        self._polled: dict[str, tuple] = {}
        self._pushed: dict[str, tuple] = {}
        self._queue: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._fenced = False
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._count = 0
        self._uploading: tuple[str, int] | None = None

    # -- before the cell -------------------------------------------------------------------
    def set_lease(self, lease: Any) -> None:
        self.store.lease = lease

    def restore(self, *, fresh: bool = False) -> int:
        """Bring back the newest complete checkpoint a trainer's hook saved (and the one its
        state names as best), or every unit a polled trainer left; with ``fresh`` delete them
        on Drive instead. Returns units restored."""
        os.makedirs(self.local, exist_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        if fresh:
            self.store.wipe()
            return 0
        units = self.store.confirmed()
        doomed = _beyond(units, self.keep)
        units = [m for m in units if m not in doomed]
        self.store.clear_orphans(units)
        self.store.delete(doomed)
        restored = [m for m in units if not m.saved_by and self._fetch(m)]
        hooked = [m for m in units if m.saved_by]
        for newest in hooked:
            if self._fetch(newest):  # else the next older one
                self.resume_path = self._path(newest.unit)
                restored.append(newest)
                restored.extend(m for m in self._beside(newest, hooked) if self._fetch(m))
                break
        if self.resume_path is None and restored:
            self.resume_path = self._path(max(restored, key=lambda m: m.created).unit)
        # Older checkpoints stay on Drive until this run confirms a newer one.
        self._stale = [m for m in hooked if m not in restored]
        shutil.rmtree(self.staging, ignore_errors=True)
        skipped = f" (skipped {'; '.join(self.store.skipped)})" if self.store.skipped else ""
        if self.resume_path is None:
            said = f"No checkpoint in drive:{self.remote} yet: starting anew"
        else:
            more = f" and {len(restored) - 1} more" if len(restored) > 1 else ""
            said = f"Restored {os.path.basename(self.resume_path)}{more} from drive:{self.remote}"
        self.progress.update(message=said + skipped)
        for manifest in restored:
            signature = _signature(self._path(manifest.unit)) or ()
            self._polled[manifest.unit] = self._pushed[manifest.unit] = signature
        return len(restored)

    def _fetch(self, manifest: UnitManifest) -> bool:
        """Download ``manifest``'s unit into place; False (noted as skipped) if it failed."""
        staged = os.path.join(self.staging, manifest.tag)
        try:
            self.store.fetch(manifest, staged)
        except (DriveError, IntegrityError, ManifestError, OSError) as exc:
            self.store.skipped.append(f"{manifest.unit}: {exc}")
            _remove(staged)
            return False
        replace_local(staged, self._path(manifest.unit), manifest.created)
        self._confirmed[manifest.unit] = manifest
        return True

    def _beside(self, newest: UnitManifest, hooked: list[UnitManifest]) -> list[UnitManifest]:
        """What the trainer reads beside its newest checkpoint: the best one that Hugging
        Face's ``trainer_state.json`` names (``load_best_model_at_end``)."""
        try:
            with open(os.path.join(self._path(newest.unit), "trainer_state.json")) as f:
                best = json.load(f).get("best_model_checkpoint")
        except (OSError, ValueError, AttributeError):
            return []
        if not isinstance(best, str):
            return []
        name = os.path.basename(best.rstrip("/\\"))
        return [m for m in hooked if m is not newest and os.path.basename(m.unit) == name]

    def _path(self, unit: str) -> str:
        return self.local if unit == WHOLE else os.path.join(self.local, *unit.split("/"))

    # -- while the cell runs -----------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="colab-magics-dir", daemon=True)
        self._thread.start()

    def use_hooks(self, name: str) -> None:
        """The hook ``name`` reports the trainer's saves and deletions: stop polling."""
        self.hook = name

    def unit_of(self, path: str) -> str:
        """The unit name of ``path`` inside the folder (``.`` for the folder itself)."""
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(self.local))
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            raise ValueError(f"{path} is not inside --dir {self.local}")
        return WHOLE if rel == "." else rel.replace(os.sep, "/")

    def saved(self, unit: str) -> None:
        """The trainer finished writing ``unit``: copy it aside now, upload it in order."""
        source = self._path(unit)
        if not os.path.exists(source):
            return
        with self._cond:
            self._count += 1
            staged = os.path.join(self.staging, str(self._count))
        try:
            os.makedirs(self.staging, exist_ok=True)
            if os.path.isdir(source):
                shutil.copytree(source, staged, symlinks=True)
            else:
                shutil.copy2(source, staged)
        except OSError as exc:  # training goes on; the trainer's next save tries again
            _remove(staged)
            self._error = f"--dir: {unit} could not be copied for upload: {exc}"
            self.progress.update(error=self._error)
            return
        self._put(("save", unit, staged))

    def deleted(self, unit: str) -> None:
        """The trainer deleted ``unit`` (rotation): delete it on Drive too."""
        self._put(("delete", unit, None))

    def mirror_deletions(self, is_checkpoint: Callable[[str], bool]) -> None:
        """Delete on Drive the units ``is_checkpoint`` names that are gone from the folder
        (for a trainer that rotates checkpoints without telling)."""
        with self._cond:
            units = set(self._confirmed) | {op[1] for op in self._queue if op[0] == "save"}
        for unit in sorted(units):
            if is_checkpoint(unit) and not os.path.lexists(self._path(unit)):
                self.deleted(unit)

    def confirmed_units(self) -> list[str]:
        with self._cond:
            return list(self._confirmed)

    def _put(self, op: tuple) -> None:
        with self._cond:
            # A deletion makes a save of the unit still waiting moot; so does a newer save of
            # it (Keras rewrites one folder): only what the trainer has now goes up.
            moot = [q for q in self._queue if q[1] == op[1]]
            if self._fenced:
                moot = [op]
            for dropped in moot:
                if dropped in self._queue:
                    self._queue.remove(dropped)
                if dropped[0] == "save":
                    _remove(dropped[2])
            if self._fenced:
                return
            self._queue.append(op)
            self._cond.notify_all()
        self._show()

    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._queue and not self._stopping:
                    self._cond.wait(self.interval)
                op = self._queue.popleft() if self._queue else None
                if op is None and self._stopping:
                    return
            if op is None:
                if not self.hook:
                    try:
                        self._poll(final=False)
                    except OSError as exc:  # the next poll tries again
                        self.progress.update(error=f"--dir: {exc}")
                continue
            try:
                self._run(op)
            except LeaseLost as exc:
                self.stop_pushing()
                self._error = str(exc)
            except Exception as exc:  # shown, and the next save tries again
                self._error = f"--dir: {op[1]} not saved on Drive: {exc}"
                self.progress.update(error=self._error)
            finally:
                if op[0] == "save":
                    _remove(op[2])
                with self._cond:
                    self._uploading = None
                self._show()

    def _run(self, op: tuple) -> None:
        kind, unit, staged = op
        if kind == "delete":
            with self._cond:
                manifest = self._confirmed.pop(unit, None)
            if manifest is not None:
                self.store.delete([manifest])
            return
        files = unit_files(staged)
        previous = self._confirmed.get(unit)
        if previous is not None and previous.same_content(files):
            return
        with self._cond:
            self._uploading = (unit, len(files))

        def left(count: int) -> None:
            with self._cond:
                self._uploading = (unit, count)
            self._show()

        self._show()
        manifest = self.store.commit(
            unit, staged, files, last=_uploaded_last, saved_by=self.hook, on_file=left
        )
        with self._cond:
            self._confirmed[unit] = manifest
            self._error = None
        self._confirmed_step(manifest)
        stale, self._stale = self._stale, []
        self.store.delete(([previous] if previous is not None else []) + stale)
        self._prune()
        if (self.progress.get("error") or "").startswith("--dir"):
            self.progress.update(error=None)  # the failure before this one is made good

    def _prune(self) -> None:
        """Keep the newest ``keep`` checkpoints on Drive (loose polled files stay)."""
        with self._cond:
            going = {op[1] for op in self._queue if op[0] == "delete"}
            doomed = _beyond([m for u, m in self._confirmed.items() if u not in going], self.keep)
            for m in doomed:
                self._confirmed.pop(m.unit, None)
        self.store.delete(doomed)

    def _confirmed_step(self, manifest: UnitManifest) -> None:
        """A checkpoint named by its step puts that step in the panel's "confirmed step"."""
        step = _step_of(manifest.unit)
        if step is not None and self.hook:
            self.progress.update(confirmed_step=step, confirmed_time=manifest.created)

    def trainer_step(self, step: int, total: int | None) -> None:
        """Where the trainer is, for the panel's bar (a hook reports it)."""
        self.progress.update(step=step, total=total or None)

    def _show(self) -> None:
        """``checkpoint-250 confirmed on Drive, checkpoint-300 uploading (3 files)``."""
        with self._cond:
            newest = max(self._confirmed.values(), key=lambda m: m.created, default=None)
            uploading, waiting = self._uploading, len(self._queue)
        parts = []
        if newest is not None:
            parts.append(f"{os.path.basename(self._path(newest.unit))} confirmed on Drive")
        if uploading is not None:
            name, files = uploading
            parts.append(
                f"{os.path.basename(self._path(name))} uploading ({files} "
                f"file{'' if files == 1 else 's'})"
            )
        if waiting:
            parts.append(f"{waiting} more queued")
        self.progress.update(message=", ".join(parts) or None, dir_pending=waiting)

    # -- the fallback without hooks ------------------------------------------------------------
    def _poll(self, *, final: bool) -> None:
        """Queue the units that are whole; delete on Drive the ones gone. A folder holding a
        marker itself (Keras's backup folder as ``--dir``) is one unit, else each entry is."""
        try:
            names = sorted(os.listdir(self.local))
        except FileNotFoundError:
            names = []
        units = [WHOLE] if MARKERS & set(names) else names
        for unit in self.confirmed_units():
            if "/" not in unit and unit not in units and (unit != WHOLE or not names):
                self._polled.pop(unit, None)
                self._pushed.pop(unit, None)
                self.deleted(unit)
        for unit in units:
            signature = _signature(self._path(unit))
            if not signature:
                continue
            stable = final or self._polled.get(unit) == signature
            self._polled[unit] = signature
            if stable and self._complete(signature) and self._changed(unit, signature):
                self.saved(unit)

    def _changed(self, unit: str, signature: tuple) -> bool:
        if self._pushed.get(unit) == signature:
            return False
        self._pushed[unit] = signature
        return True

    @staticmethod
    def _complete(signature: tuple) -> bool:
        """A file is whole once stable; a folder with files a known trainer writes before its
        marker needs the marker too."""
        if len(signature) == 1 and len(signature[0]) == 2:
            return True
        names = {os.path.basename(entry[0]) for entry in signature}
        return bool(names & MARKERS) or not (names & _BESIDE_MARKER)

    # -- after the cell --------------------------------------------------------------------------
    def stop_pushing(self) -> None:
        """Another runtime took the run over: push nothing more (its files win on Drive)."""
        with self._cond:
            self._fenced = True
            self._queue.clear()
            self._stopping = True
            self._cond.notify_all()

    def finish(self) -> bool:
        """Push what is left and wait for Drive to confirm; False (with the error shown) if
        something did not go."""
        if not self.hook and not self._fenced:
            self._poll(final=True)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        shutil.rmtree(self.staging, ignore_errors=True)
        self._show()
        if self._fenced:
            return False
        if self._error:
            self.progress.update(error=self._error)
            return False
        return True
