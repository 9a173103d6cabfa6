"""``push``: upload a local file or tree to ``gs://``, sending only what differs.

An object with the local file's size and md5 is left alone. Every upload names the md5 it
must have (GCS refuses bytes that hash otherwise) and a generation precondition: 0 for a new
object, the listed generation for one it replaces, so a write by someone else since the
listing is never overwritten silently (that file fails with a message; run it again).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from colab_magics.drive.pool import run_each
from colab_magics.gcs.client import GcsClient, GcsObject, open_client
from colab_magics.gcs.errors import GcsIntegrityError, map_exception
from colab_magics.gcs.hashes import md5_b64, md5_hex
from colab_magics.gcs.paths import parse_gs
from colab_magics.progress import NO_SINK, Sink
from colab_magics.sync import feedback as fb
from colab_magics.sync.errors import is_fatal
from colab_magics.sync.local import LocalFile, Md5Cache, scan
from colab_magics.sync.report import SyncReport


def push(
    local: str | os.PathLike[str],
    url: str,
    *,
    client: GcsClient | None = None,
    jobs: int = 8,
    progress: Sink = NO_SINK,
    cache_dir: str | os.PathLike[str] | None = None,
) -> SyncReport:
    """Upload ``local`` to ``gs://BUCKET/PATH``.

    A folder's files land below ``PATH/`` by their relative path; a file lands at ``PATH``
    (below it, by its own name, when ``PATH`` ends with ``/``).
    """
    path = parse_gs(url)
    source = os.fspath(local)
    report = SyncReport()
    feedback = fb.Feedback(progress)
    action = f"Push of {source!r} to {path}"
    client = open_client(client)
    with fb.run(report, feedback, client, action=action, where=source):  # type: ignore[arg-type]
        feedback.phase("listing")
        tree = scan(source)
        report.errors.update(tree.errors)
        if os.path.isdir(source):
            names = {rel: path.child(rel) for rel in tree.files}
        else:
            (rel,) = tree.files
            name = path.name + rel if path.name.endswith("/") or not path.name else path.name
            names = {rel: name}
        if os.path.isdir(source):
            prefix = path.name.rstrip("/") + "/" if path.name.strip("/") else ""
            listed = {o.name: o for o in client.list(path.bucket, prefix)}
        else:
            (name,) = names.values()
            found = client.stat(path.bucket, name)
            listed = {name: found} if found is not None else {}
        cache = Md5Cache(tree.root, cache_dir)
        feedback.phase("uploading")
        transfer = feedback.transfer
        transfer.set_files(len(names))
        transfer.set_size(sum(f.size for f in tree.files.values()))
        lock = threading.Lock()

        def one(rel: str) -> bool:
            here = tree.files[rel]
            md5 = cache.md5(rel, here)
            there = listed.get(names[rel])
            if there is not None and there.size == here.size and there.md5 == md5:
                transfer.relative_update(here.size)
                transfer.file_done(rel)
                return False
            upload_file(client, here, path.bucket, names[rel], md5, replacing=there)
            transfer.relative_update(here.size)
            transfer.file_done(rel)
            return True

        def done(rel: str, uploaded: bool) -> None:
            with lock:
                if uploaded:
                    report.uploaded += 1
                    report.replaced += names[rel] in listed
                    report.bytes += tree.files[rel].size
                else:
                    report.skipped += 1

        def failed(rel: str, exc: BaseException) -> None:
            report.errors[rel] = str(exc)
            feedback.file_error(rel, exc)

        try:
            run_each(
                ((rel, rel) for rel in sorted(names)),
                one,
                jobs=jobs,
                on_result=done,
                on_error=failed,
                fatal=is_fatal,
            )
        finally:
            cache.save()
            report.hashed = cache.hashed
    return report


def upload_file(
    client: GcsClient,
    local: LocalFile | str,
    bucket: str,
    name: str,
    md5: str,
    *,
    replacing: GcsObject | None = None,
    content_type: str | None = None,
) -> GcsObject:
    """Upload one local file as ``name``, confirmed by GCS's md5, with ``ifGenerationMatch``
    (0 for a new object, ``replacing``'s generation for one it replaces)."""
    path = local.path if isinstance(local, LocalFile) else local
    blob = client.blob(bucket, name)
    blob.md5_hash = md5_b64(md5)  # GCS checks the bytes against it and refuses a mismatch
    client.count()
    try:
        blob.upload_from_filename(
            path,
            content_type=content_type,
            if_generation_match=replacing.generation if replacing is not None else 0,
        )
    except Exception as exc:
        raise map_exception(exc, what=f"gs://{bucket}/{name}") from exc
    return confirmed(blob, md5, f"gs://{bucket}/{name}")


def upload_bytes(
    client: GcsClient,
    data: bytes,
    bucket: str,
    name: str,
    md5: str,
    *,
    if_generation_match: int | None = 0,
    content_type: str = "application/octet-stream",
    metadata: dict[str, str] | None = None,
) -> GcsObject:
    """Upload ``data`` as ``name`` (with custom ``metadata``), confirmed by md5, under a
    generation precondition."""
    blob = client.blob(bucket, name)
    blob.md5_hash = md5_b64(md5)
    if metadata:
        blob.metadata = metadata
    client.count()
    try:
        blob.upload_from_string(
            data, content_type=content_type, if_generation_match=if_generation_match
        )
    except Exception as exc:
        raise map_exception(exc, what=f"gs://{bucket}/{name}") from exc
    return confirmed(blob, md5, f"gs://{bucket}/{name}")


def confirmed(blob: Any, md5: str, url: str) -> GcsObject:
    """The uploaded object, once GCS's md5 for it is ours."""
    stored = md5_hex(blob.md5_hash)
    if stored != md5:
        raise GcsIntegrityError(
            f"{url}: GCS stored md5 {stored}, the local bytes hash to {md5}; it is not "
            "confirmed. Push it again."
        )
    return GcsObject.from_blob(blob)
