"""``--dir`` on Drive: a trainer's checkpoints as units, each counted only once whole.

A *unit* is one checkpoint as the trainer wrote it: a folder (``checkpoint-300/``, Keras's
backup folder) or a file (``epoch=2-step=300.ckpt``), named by its path in the local folder.
Layout in the run's ``dir`` folder on Drive::

    blobs-3f9a1c2e/0, 1, ...      the unit's files (by Drive id, never by name)
    unit-1764323000123-3f9a1c2e.json  written last: the unit's path and each file's path,
                                      size, md5 and Drive id

As with ``drive_store``, a unit counts only when its manifest is on Drive and every blob it
names still verifies; a unit cut off mid-upload has no manifest and is never restored.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable

from colab_magics.checkpoint.formats import IntegrityError
from colab_magics.checkpoint.manifest import MAX_MANIFEST_BYTES, ManifestError
from colab_magics.drive import DriveClient, DriveError, DriveFile, DriveNotFound
from colab_magics.sync.local import file_md5

FORMAT = 1
WHOLE = "."
"""The unit that is the whole folder (Keras's backup folder given as ``--dir`` itself)."""
_MANIFEST = re.compile(r"^unit-(\d{1,20})-([0-9a-f]{8})\.json$")
_BLOBS = re.compile(r"^blobs-([0-9a-f]{8})$")
_FILE_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")


@dataclasses.dataclass(frozen=True)
class UnitFile:
    path: str
    """Relative to the unit ("" for a unit that is one file)."""
    size: int
    md5: str
    file_id: str = ""


@dataclasses.dataclass(frozen=True)
class UnitManifest:
    """One confirmed unit: its path in the folder, when it was saved, its files."""

    run: str
    unit: str
    created: float
    files: tuple[UnitFile, ...]
    saved_by: str = ""
    """The trainer hook that saved it (``hf``, ``lightning``, ``keras``); "" when polled."""
    tag: str = ""
    manifest_id: str = ""

    @property
    def is_file(self) -> bool:
        return len(self.files) == 1 and self.files[0].path == ""

    def same_content(self, files: list[UnitFile]) -> bool:
        ours = sorted((f.path, f.size, f.md5) for f in self.files)
        return ours == sorted((f.path, f.size, f.md5) for f in files)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "run": self.run,
                "unit": self.unit,
                "created": self.created,
                "saved_by": self.saved_by,
                "files": [dataclasses.asdict(f) for f in self.files],
            },
            indent=1,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes, *, tag: str, manifest_id: str) -> UnitManifest:
        """Parse and check: every path must stay inside the folder it is restored into."""
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ManifestError("not a unit manifest of a known format")
            unit = check_relative(doc["unit"], whole_ok=True)
            files = []
            for record in doc["files"]:
                path = record["path"]
                path = "" if path == "" else check_relative(path)
                md5, size, file_id = record["md5"], record["size"], record["file_id"]
                if not (isinstance(md5, str) and _MD5.match(md5)):
                    raise ManifestError(f"{path or unit}: {md5!r} is not an md5")
                if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                    raise ManifestError(f"{path or unit}: {size!r} is not a size")
                if not (isinstance(file_id, str) and _FILE_ID.match(file_id)):
                    raise ManifestError(f"{path or unit}: {file_id[:100]!r} is not a Drive id")
                files.append(UnitFile(path, size, md5, file_id))
            if not files or (len(files) > 1 and any(f.path == "" for f in files)):
                raise ManifestError("its files are neither one file nor a folder's files")
            created = doc["created"]
            if not isinstance(created, (int, float)) or isinstance(created, bool):
                raise ManifestError(f"its creation time {created!r} is not a time")
            saved_by = doc.get("saved_by", "")
            if not isinstance(saved_by, str):
                raise ManifestError(f"its saved_by {saved_by!r} is not a string")
            return cls(str(doc["run"]), unit, float(created), tuple(files), saved_by[:100], tag,
                       manifest_id)  # fmt: skip
        except ManifestError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise ManifestError(
                f"not a readable unit manifest ({exc.__class__.__name__})"
            ) from None


def check_relative(path: object, *, whole_ok: bool = False) -> str:
    """``path`` if it is a plain relative path (no ``..``, no absolute, no empty parts)."""
    if whole_ok and path == WHOLE:
        return WHOLE
    if not isinstance(path, str) or not path or len(path) > 1000 or "\\" in path:
        raise ManifestError(f"{str(path)[:100]!r} is not a relative path")
    parts = path.split("/")
    if any(p in ("", ".", "..") or "\x00" in p for p in parts):
        raise ManifestError(f"{path[:100]!r} is not a relative path inside the folder")
    return path


def unit_files(local: str) -> list[UnitFile]:
    """The files of the unit at ``local`` (a file, or a folder walked in name order)."""
    if os.path.isfile(local):
        return [UnitFile("", os.path.getsize(local), file_md5(local))]
    found = []
    for top, dirs, names in os.walk(local):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(top, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            rel = os.path.relpath(path, local).replace(os.sep, "/")
            found.append(UnitFile(rel, os.path.getsize(path), file_md5(path)))
    return found


class UnitStore:
    """The units of one run's ``--dir`` folder on Drive: commit, list, fetch, delete."""

    def __init__(self, client: DriveClient, folder: str, *, run: str, lease=None) -> None:
        self.client = client
        self.folder = folder
        self.run = run
        self.lease = lease
        self.skipped: list[str] = []

    def _children(self) -> list[DriveFile]:
        try:
            return self.client.listdir(self.folder)
        except DriveNotFound:
            return []

    def commit(
        self,
        unit: str,
        staged: str,
        files: list[UnitFile],
        *,
        last: Callable[[str], bool],
        saved_by: str = "",
        on_file: Callable[[int], None] = lambda left: None,
    ) -> UnitManifest:
        """Upload the files staged at ``staged`` (those ``last`` picks after the others),
        each verified by md5, then the manifest: only then does the unit count."""
        tag = secrets.token_hex(4)
        ordered = sorted(files, key=lambda f: (last(f.path.rsplit("/", 1)[-1] or unit), f.path))
        uploaded = []
        for index, file in enumerate(ordered):
            on_file(len(ordered) - index)
            self._check_lease()
            source = os.path.join(staged, file.path) if file.path else staged
            result = self.client.upload(
                source, f"{self.folder}/blobs-{tag}/{index}", replace=False, md5=file.md5
            )
            uploaded.append(dataclasses.replace(file, file_id=result.file.id))
        manifest = UnitManifest(self.run, unit, time.time(), tuple(uploaded), saved_by, tag)
        self._check_lease()
        name = f"unit-{int(manifest.created * 1000)}-{tag}.json"
        result = self.client.upload(
            manifest.to_json(), f"{self.folder}/{name}", replace=False, mime_type="application/json"
        )
        return dataclasses.replace(manifest, manifest_id=result.file.id)

    def _check_lease(self) -> None:
        if self.lease is not None:
            self.lease.check()  # a runtime taken over uploads nothing more

    def confirmed(self) -> list[UnitManifest]:
        """Every readable unit manifest of this run, newest first, one per unit path."""
        self.skipped = []
        found: dict[str, UnitManifest] = {}
        manifests = []
        for file in self._children():
            match = _MANIFEST.match(file.name)
            if not match or file.is_folder:
                continue
            try:
                if file.size is not None and file.size > MAX_MANIFEST_BYTES:
                    raise ManifestError(f"it is {file.size} bytes, more than a manifest can be")
                manifest = UnitManifest.from_json(
                    self.client.read_bytes(file), tag=match.group(2), manifest_id=file.id
                )
                if manifest.run != self.run:
                    raise ManifestError(f"it belongs to run {manifest.run[:100]!r}")
            except (DriveError, ManifestError) as exc:
                self.skipped.append(f"{file.name}: {exc}")
                continue
            manifests.append(manifest)
        for manifest in sorted(manifests, key=lambda m: (m.created, m.tag), reverse=True):
            found.setdefault(manifest.unit, manifest)
        return list(found.values())

    def fetch(self, manifest: UnitManifest, local: str) -> None:
        """Download the unit into ``local`` (a file, or a folder made anew); every blob must
        still be on Drive with the manifest's md5, else IntegrityError."""
        for file in manifest.files:
            try:
                remote = self.client.file(file.file_id)
            except DriveNotFound:
                raise IntegrityError(
                    f"{file.path or manifest.unit} is no longer on Drive"
                ) from None
            if remote.md5 != file.md5 or remote.size != file.size:
                raise IntegrityError(f"{file.path or manifest.unit} on Drive is not what was saved")
            target = os.path.join(local, *file.path.split("/")) if file.path else local
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            self.client.download(remote, target)

    def delete(self, manifests: list[UnitManifest]) -> None:
        """Delete units: manifests first, so a half-done delete leaves no unit without blobs."""
        if not manifests:
            return
        self._check_lease()
        self.client.delete_ids([m.manifest_id for m in manifests if m.manifest_id])
        tags = {m.tag for m in manifests}
        blobs = [f.id for f in self._children() if (b := _BLOBS.match(f.name)) and b[1] in tags]
        if blobs:
            self.client.delete_ids(blobs)

    def clear_orphans(self, kept: list[UnitManifest]) -> None:
        """Delete blob folders no manifest names (uploads cut off by a lost runtime) and older
        manifests of a unit that a newer one replaced."""
        children = self._children()
        live = {m.tag for m in kept}
        doomed = [
            f.id
            for f in children
            if ((m := _BLOBS.match(f.name)) or (m := _MANIFEST.match(f.name)))
            and m.group(m.lastindex) not in live
            and f.name not in self._unreadable()
        ]
        if doomed:
            self._check_lease()
            self.client.delete_ids(doomed)

    def _unreadable(self) -> set[str]:
        return {entry.split(":", 1)[0] for entry in self.skipped}

    def wipe(self) -> None:
        """Delete every unit (``--fresh``): the run starts over."""
        ids = [f.id for f in self._children() if _BLOBS.match(f.name) or _MANIFEST.match(f.name)]
        if ids:
            self._check_lease()
            self.client.delete_ids(ids)


def replace_local(staged: str, target: str, mtime: float) -> None:
    """Put a fetched unit at ``target``, replacing what is there, dated ``mtime`` (when it
    was saved: trainers that rotate checkpoints by age, as Hugging Face's does, see the
    order they were saved in, not the order they were downloaded in)."""
    for top, _dirs, names in os.walk(staged):
        for name in names:
            os.utime(os.path.join(top, name), (mtime, mtime))
    os.utime(staged, (mtime, mtime))
    if os.path.isdir(target) and not os.path.islink(target):
        shutil.rmtree(target)
    elif os.path.lexists(target):
        os.remove(target)
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    os.replace(staged, target)
