"""The engine under ``push``: compare a scanned local tree with Drive, plan, and execute.

The plan compares each local file with the Drive file at the same path: missing -> upload,
other size or md5 -> replace (new content, same id), same size and md5 -> skip. Local md5s come
from the cache (``local.Md5Cache``) and are only computed where Drive has a file of the same
size, so a first push hashes nothing twice and a second push of an unchanged tree hashes
nothing and uploads nothing. A push killed half way continues: what reached Drive verifies and
is skipped. Every upload is md5-verified by the client.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from colab_magics.drive import DriveClient, DriveFile
from colab_magics.drive.paths import join
from colab_magics.drive.pool import run_each
from colab_magics.progress import Sink
from colab_magics.sync import feedback as fb
from colab_magics.sync.errors import SyncError, is_fatal
from colab_magics.sync.local import LocalFile, LocalTree, Md5Cache, restat
from colab_magics.sync.remote import (
    RemoteTree,
    add_own_writes,
    file_tree,
    list_tree,
    lookup,
)
from colab_magics.sync.report import SyncReport


@dataclasses.dataclass
class Upload:
    rel: str
    """Path below the Drive destination folder."""
    local: LocalFile
    existing: DriveFile | None
    cache_key: str


@dataclasses.dataclass
class Plan:
    uploads: list[Upload] = dataclasses.field(default_factory=list)
    mkdirs: list[str] = dataclasses.field(default_factory=list)
    deletes: list[tuple[str, DriveFile]] = dataclasses.field(default_factory=list)
    skipped: int = 0


def push_tree(
    tree: LocalTree,
    parts: tuple[str, ...],
    *,
    client: DriveClient,
    delete: bool,
    jobs: int,
    dry_run: bool,
    progress: Sink,
    cache_dir: str | os.PathLike[str] | None,
    action: str,
    drive_names: dict[str, str] | None = None,
    keep: set[str] | None = None,
    single: bool = False,
) -> SyncReport:
    """Push ``tree`` to the folder ``parts``. ``drive_names`` maps a local relative path to a
    different Drive relative path (sharding, a renamed file); ``keep`` lists Drive paths that
    ``delete`` spares. ``single``: one file, so only its own Drive path is looked up."""
    report = SyncReport(dry_run=dry_run, errors=dict(tree.errors))
    feedback = fb.Feedback(progress)
    cache = Md5Cache(tree.root, cache_dir)
    with fb.run(report, feedback, client, action=action, where=tree.root):
        feedback.phase("listing")
        root = lookup(client, parts)
        if root is not None and not root.is_folder:
            raise SyncError(
                f"drive:{join(parts)} is a file on Drive, but a folder is needed here. Push to "
                "another path, or delete or rename that file first."
            )
        if single:
            remote = file_tree(client, root, parts, next(iter((drive_names or {}).values())))
        else:
            remote = list_tree(client, root)
            names = drive_names or {}
            files = {names.get(rel, rel) for rel in tree.files}
            dirs = {names.get(d, d) for d in tree.dirs}
            dirs.update(a for f in files for a in _ancestors(f))
            add_own_writes(client, remote, dirs, files)
        report.duplicates = remote.duplicates
        try:
            feedback.phase("comparing", files_local=len(tree.files), files_remote=len(remote.files))
            plan = make_plan(
                tree,
                remote,
                cache,
                jobs=jobs,
                delete=delete,
                drive_names=drive_names or {},
                keep=keep or set(),
            )
            report.hashed = cache.hashed
            report.skipped = plan.skipped
            if dry_run:
                _describe(plan, report)
                return report
            _execute(plan, parts, root, client, cache, jobs, report, feedback)
        finally:
            cache.save()
    return report


def make_plan(
    tree: LocalTree,
    remote: RemoteTree,
    cache: Md5Cache,
    *,
    jobs: int,
    delete: bool,
    drive_names: dict[str, str],
    keep: set[str],
) -> Plan:
    plan = Plan()
    uploads = []
    for rel, f in sorted(tree.files.items()):
        dest = drive_names.get(rel, rel)
        uploads.append(Upload(dest, f, remote.files.get(dest), rel))
    same_size = [u for u in uploads if u.existing is not None and u.existing.size == u.local.size]

    def digest(u: Upload) -> str | None:
        try:
            return cache.md5(u.cache_key, u.local)
        except OSError:  # gone or unreadable since the scan: the upload will say why
            return None

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="sync-md5") as pool:
        digests = dict(zip((id(u) for u in same_size), pool.map(digest, same_size), strict=True))
    for u in uploads:
        if u.existing is not None and digests.get(id(u)) == u.existing.md5:
            plan.skipped += 1
        else:
            plan.uploads.append(u)
    wanted_dirs = {drive_names.get(d, d) for d in tree.dirs}
    for u in uploads:  # folders that only hold files
        wanted_dirs.update(_ancestors(u.rel))
    plan.mkdirs = sorted(d for d in wanted_dirs if d not in remote.folders)
    if delete:
        wanted_files = {u.rel for u in uploads} | keep
        gone = [(p, f) for p, f in remote.files.items() if p not in wanted_files]
        gone += [(p, f) for p, f in remote.folders.items() if p not in wanted_dirs]
        # What could not be read locally is not gone: never delete its Drive copy.
        unread = set(tree.errors)
        gone = [
            (p, f)
            for p, f in gone
            if "." not in unread and not unread.intersection([p, *_ancestors(p)])
        ]
        doomed = {p for p, f in gone if f.is_folder}
        # A folder's delete takes its contents with it: delete only the topmost.
        plan.deletes = sorted(
            (p, f) for p, f in gone if not any(a in doomed for a in _ancestors(p))
        )
    return plan


def _ancestors(rel: str) -> list[str]:
    bits = rel.split("/")[:-1]
    return ["/".join(bits[: i + 1]) for i in range(len(bits))]


def _describe(plan: Plan, report: SyncReport) -> None:
    for d in plan.mkdirs:
        report.plan.append(("mkdir", d, 0))
    for u in plan.uploads:
        report.plan.append(("replace" if u.existing else "upload", u.rel, u.local.size))
        report.uploaded += 1
        report.replaced += u.existing is not None
        report.bytes += u.local.size
    for p, f in plan.deletes:
        report.plan.append(("delete", p, f.size or 0))
        report.deleted += 1


def _execute(
    plan: Plan,
    parts: tuple[str, ...],
    root: DriveFile | None,
    client: DriveClient,
    cache: Md5Cache,
    jobs: int,
    report: SyncReport,
    feedback: fb.Feedback,
) -> None:
    if root is None:
        client.ensure_folder(join(parts))
        report.folders_created += 1
    for d in plan.mkdirs:  # parents first (sorted), so each level is made once
        client.ensure_folder(join((*parts, *d.split("/"))))
        report.folders_created += 1
    feedback.phase("uploading")
    progress = feedback.transfer
    progress.set_files(len(plan.uploads))
    lock = threading.Lock()

    def one(u: Upload) -> Upload:
        dest = join((*parts, *u.rel.split("/")))
        if u.existing is not None:
            result = client.upload(u.local.path, dest, file_id=u.existing.id, progress=progress)
        else:
            result = client.upload(u.local.path, dest, replace=False, progress=progress)
        if restat(u.local) == u.local:  # unchanged while it was read: its md5 is Drive's
            cache.put(u.cache_key, u.local, result.file.md5 or "")
        return u

    def done(_: str, u: Upload) -> None:
        with lock:
            report.uploaded += 1
            report.replaced += u.existing is not None
            report.bytes += u.local.size

    def failed(key: str, exc: BaseException) -> None:
        report.errors[key] = str(exc)
        feedback.file_error(key, exc)

    run_each(
        ((u.rel, u) for u in plan.uploads),
        one,
        jobs=jobs,
        on_result=done,
        on_error=failed,
        fatal=is_fatal,
    )
    if plan.deletes:
        feedback.phase("deleting")
        try:
            client.delete_ids([f.id for _, f in plan.deletes])
            report.deleted += len(plan.deletes)
        except Exception as exc:
            if is_fatal(exc):
                raise
            report.errors["(delete)"] = str(exc)
            feedback.file_error("(delete)", exc)
