"""``DriveClient``: the one object the extension uses to talk to Drive (or the emulator).

It ties the parts together — paths, listing, uploads, downloads, deletes, quota — over one
:class:`~colab_magics.drive.transport.Transport` (shared service, one Http per thread, one
retrier and pacer). All methods are safe to call from several threads.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from colab_magics.drive import download as _download
from colab_magics.drive import housekeeping, listing
from colab_magics.drive.errors import DriveAuthError, DriveError, DriveNotFound
from colab_magics.drive.ids import IdPool
from colab_magics.drive.model import FILE_FIELDS, FOLDER_MIME, DriveFile, Quota, UploadTarget
from colab_magics.drive.paths import ROOT, Resolution, Resolver, join, parse_path, pick
from colab_magics.drive.pool import DEFAULT_WORKERS, PoolOutcome, run_parallel
from colab_magics.drive.retry import DEFAULT_BURST, DEFAULT_RATE, Pacer, Retrier, RetryPolicy
from colab_magics.drive.staging import Staging
from colab_magics.drive.transport import HttpFactory, Transport
from colab_magics.drive.upload import (
    DEFAULT_MULTIPART_LIMIT,
    UploadResult,
    chunk_size_ok,
    create_with_id,
)
from colab_magics.drive.upload import upload as _upload
from colab_magics.progress import NO_PROGRESS, Callback

PathLike = "str | os.PathLike[str]"


class DriveClient:
    """A Drive v3 client: paths, listing, verified transfers, deletes and quota.

    ``rate``/``burst`` configure the pacer (requests per second; ``None`` turns it off).
    ``description`` is a one-line account of what this client is connected to.
    """

    def __init__(
        self,
        root_url: str,
        credentials: Any,
        *,
        mount_root: str | None = None,
        policy: RetryPolicy | None = None,
        rate: float | None = DEFAULT_RATE,
        burst: float = DEFAULT_BURST,
        chunk_size: int | None = None,
        multipart_limit: int = DEFAULT_MULTIPART_LIMIT,
        download_chunk_size: int = _download.DEFAULT_DOWNLOAD_CHUNK,
        workers: int = DEFAULT_WORKERS,
        timeout: float | None = 60,
        http_factory: HttpFactory | None = None,
        sleep: Callable[[float], None] = time.sleep,
        description: str = "",
        cache_ttl: float = 2.0,
    ) -> None:
        retrier = Retrier(policy, Pacer(rate, burst, sleep=sleep), sleep=sleep)
        self.transport = Transport(
            root_url, credentials, retrier=retrier, http_factory=http_factory, timeout=timeout
        )
        self.mount_root = mount_root
        self.chunk_size = None if chunk_size is None else chunk_size_ok(chunk_size)
        self.multipart_limit = multipart_limit
        self.download_chunk_size = download_chunk_size
        self.workers = workers
        self.description = description
        self.cache_ttl = cache_ttl
        self._ids = IdPool(self.transport)
        self._resolver: Resolver | None = None
        self._changes_token: str | None = None
        self._changes_at = 0.0
        self._lock = threading.Lock()
        self._on_close: list[Callable[[], None]] = []
        self.emulator: Any = None
        """The embedded emulator's handle when :func:`connect` started one."""

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        return self.transport.root_url

    @property
    def credentials(self) -> Any:
        return self.transport.credentials

    @property
    def service(self) -> Any:
        """The underlying google-api-python-client service (execute with ``http=``)."""
        return self.transport.service

    @property
    def retries(self) -> int:
        return self.transport.retrier.retries

    @property
    def requests(self) -> int:
        return self.transport.requests

    def add_close_callback(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on :meth:`close` (e.g. stop an embedded emulator)."""
        self._on_close.append(fn)

    def close(self) -> None:
        while self._on_close:
            self._on_close.pop()()

    def __enter__(self) -> DriveClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<DriveClient {self.description or self.root_url}>"

    # -- paths ------------------------------------------------------------------------------

    @property
    def resolver(self) -> Resolver:
        with self._lock:
            if self._resolver is None:
                root = self._root()
                self._resolver = Resolver(
                    lambda parent, name: listing.find_named(self.transport, parent, name),
                    self._make_folder,
                    root,
                )
            return self._resolver

    def _root(self) -> DriveFile:
        """My Drive's folder. Under the ``drive.file`` scope Drive may refuse to describe it;
        the ``root`` alias still works in queries and as a parent, so use that."""
        try:
            return self.file(ROOT)
        except (DriveNotFound, DriveAuthError) as exc:
            if exc.status == 401:
                raise
            return DriveFile(id=ROOT, name="My Drive", mime_type=FOLDER_MIME)

    def parse(self, path: PathLike) -> tuple[str, ...]:
        """Components below My Drive of a relative, ``drive:`` or mount path."""
        return parse_path(path, self.mount_root)

    def resolve(self, path: PathLike, *, unique: bool = False) -> Resolution:
        """The file at ``path`` (oldest wins among duplicates; see ``paths``)."""
        self._refresh_cache()
        return self.resolver.resolve(self.parse(path), unique=unique)

    def stat(self, path: PathLike) -> DriveFile:
        return self.resolve(path).file

    def exists(self, path: PathLike) -> bool:
        try:
            self.resolve(path)
        except DriveNotFound:
            return False
        return True

    def file(self, file_id: str) -> DriveFile:
        """Metadata of one file by id."""
        return _download.get_file(self.transport, file_id)

    def ensure_folder(self, path: PathLike) -> DriveFile:
        """The folder at ``path``, creating any missing level."""
        self._refresh_cache()
        return self.resolver.ensure_folder(self.parse(path))

    def _make_folder(self, parent_id: str, name: str) -> DriveFile:
        body: dict[str, Any] = {"name": name, "mimeType": FOLDER_MIME, "parents": [parent_id]}
        return self._create_metadata(body)

    def _create_metadata(self, body: dict[str, Any]) -> DriveFile:
        new_id = self._ids.take()
        if new_id:
            body = {**body, "id": new_id}
        files = self.transport.files
        data = create_with_id(
            self.transport,
            new_id,
            lambda: files.create(body=body, fields=FILE_FIELDS),
            what=body["name"],
        )
        return DriveFile.from_api(data)

    def _refresh_cache(self) -> None:
        """Apply the changes feed to the id cache, at most every ``cache_ttl`` seconds."""
        resolver = self.resolver
        now = time.monotonic()
        with self._lock:
            if now - self._changes_at < self.cache_ttl:
                return
            self._changes_at = now
            token = self._changes_token
        if token is None:
            token = listing.start_page_token(self.transport)
            with self._lock:
                self._changes_token = token
            return
        if not len(resolver.cache):
            return
        try:
            changes, token = listing.list_changes(self.transport, token)
        except DriveAuthError:
            raise
        except DriveError:
            # The feed failed (an expired token, say): trust nothing cached and start a new
            # feed before anything is cached again, so no later change is missed.
            resolver.cache.clear()
            token = listing.start_page_token(self.transport)
            with self._lock:
                self._changes_token = token
            return
        for file_id, file in changes:
            resolver.cache.apply_change(file_id, file)
        with self._lock:
            self._changes_token = token

    # -- listing ----------------------------------------------------------------------------

    def listdir(self, path: PathLike = "") -> list[DriveFile]:
        """Untrashed children of the folder at ``path`` (all pages)."""
        return listing.list_children(self.transport, self.stat_folder(path).id)

    def query(self, q: str, *, order_by: str | None = None) -> list[DriveFile]:
        """Every file matching a Drive ``q`` expression (all pages), e.g.
        ``"appProperties has { key='run' and value='r1' } and trashed = false"``."""
        return listing.list_query(self.transport, q, order_by=order_by)

    def stat_folder(self, path: PathLike) -> DriveFile:
        parts = self.parse(path)
        return self.resolve(path).file if parts else self.resolver.root

    def walk(self, path: PathLike = "") -> Iterator[tuple[str, DriveFile]]:
        """``(relative path, file)`` for the whole tree under ``path`` (levels in parallel)."""
        return listing.walk(self.transport, self.stat_folder(path).id, workers=self.workers)

    def index(self, path: PathLike = "") -> listing.TreeIndex:
        """An index of the tree under ``path``; call ``.refresh()`` to apply later changes."""
        return listing.TreeIndex(self.transport, self.stat_folder(path).id, workers=self.workers)

    # -- transfers --------------------------------------------------------------------------

    def upload(
        self,
        source: Any,
        dest: PathLike | None = None,
        *,
        file_id: str | None = None,
        replace: bool = True,
        mime_type: str | None = None,
        md5: str | None = None,
        app_properties: dict[str, str] | None = None,
        progress: Callback = NO_PROGRESS,
    ) -> UploadResult:
        """Upload ``source`` (path, binary stream or bytes) and verify Drive's md5.

        ``dest`` is the Drive path of the file (ending in ``/``: a folder, keeping the source's
        name); missing folders are created. With ``replace`` an existing file there gets the
        new content in place (same id); otherwise a new file is made. ``file_id`` updates that
        file instead. ``md5`` is an extra expected checksum that must match.
        ``progress`` may be shared by several uploads: this one reports through a branch.
        """
        target = self._target(source, dest, file_id, replace, mime_type, app_properties)
        result = _upload(
            self.transport, source, target, chunk_size=self.chunk_size,
            multipart_limit=self.multipart_limit, expected_md5=md5, progress=progress.branched(),
            delete=self._delete_one,
        )  # fmt: skip
        self._remember(result.file)
        progress.file_done(result.file.name)
        return result

    def _remember(self, file: DriveFile) -> None:
        """Cache a file we just wrote (listings may not show it yet)."""
        for parent in file.parents:
            cached = self.resolver.cache.get(parent, file.name)
            if cached is None or cached.id == file.id:
                self.resolver.cache.put(parent, file)

    def _fresh(self, source: PathLike | DriveFile) -> DriveFile:
        """Current metadata (size, md5) of a path or file: cached entries may be stale."""
        if isinstance(source, DriveFile):
            return source
        return self.file(self.stat(source).id)

    def _target(
        self,
        source: Any,
        dest: PathLike | None,
        file_id: str | None,
        replace: bool,
        mime_type: str | None,
        app_properties: dict[str, str] | None,
    ) -> UploadTarget:
        if file_id is not None:
            name = None if dest is None else (self.parse(dest) or ("",))[-1] or None
            return UploadTarget(
                name=name, file_id=file_id, mime_type=mime_type, app_properties=app_properties
            )
        if dest is None:
            raise ValueError("upload needs a Drive destination path or a file_id")
        text = os.fspath(dest)
        parts = self.parse(text)
        if text.endswith("/") or not parts:
            if not isinstance(source, (str, os.PathLike)):
                raise ValueError("a folder destination needs a source path to take the name from")
            parts = (*parts, os.path.basename(os.fspath(source)))
        folder = self.ensure_folder(join(parts[:-1]))
        name = parts[-1]
        existing = None
        if replace:
            candidates = listing.find_named(self.transport, folder.id, name)
            cached = self.resolver.cache.get(folder.id, name)
            candidates += [cached] if cached and cached.id not in {c.id for c in candidates} else []
            files = [c for c in candidates if not c.is_folder]
            existing = pick(files) if files else None
        if existing is not None:
            return UploadTarget(
                name=name, file_id=existing.id, mime_type=mime_type, app_properties=app_properties
            )
        return UploadTarget(
            name=name, parent_id=folder.id, new_id=self._ids.take(), mime_type=mime_type,
            app_properties=app_properties,
        )  # fmt: skip

    def download(
        self,
        source: PathLike | DriveFile,
        local_path: PathLike,
        *,
        progress: Callback = NO_PROGRESS,
        staging: Staging | None = None,
    ) -> _download.DownloadResult:
        """Download to ``local_path`` through a temporary file in ``staging`` (by default a
        staging folder of its own beside it), renamed only after the md5 verifies. ``progress``
        may be shared by several downloads: this one reports through a branch of it."""
        file = self._fresh(source)
        result = _download.download_to_path(
            self.transport, file, local_path, chunk_size=self.download_chunk_size,
            progress=progress.branched(file.name), staging=staging,
        )  # fmt: skip
        progress.file_done(file.name)
        return result

    def read_bytes(self, source: PathLike | DriveFile) -> bytes:
        """The verified content of a (small) file."""
        import io

        file = self._fresh(source)
        buf = io.BytesIO()
        _download.download_to_stream(self.transport, file, buf, chunk_size=self.download_chunk_size)
        return buf.getvalue()

    def upload_many(
        self,
        pairs: Iterable[tuple[PathLike, PathLike]],
        *,
        replace: bool = True,
        progress: Callback = NO_PROGRESS,
        workers: int | None = None,
    ) -> PoolOutcome[str, UploadResult]:
        """Upload ``(local, drive_path)`` pairs in parallel; errors are collected per item.

        Each destination folder is made and listed once, not once per file.
        """
        pairs = [(os.fspath(src), os.fspath(dst)) for src, dst in pairs]
        progress.set_files(len(pairs))
        existing: dict[tuple[str, ...], dict[str, DriveFile]] = {}
        folder_ids: dict[tuple[str, ...], str] = {}
        jobs: list[tuple[str, tuple[str, UploadTarget]]] = []
        for src, dst in pairs:
            parts = self.parse(dst)
            if dst.endswith("/") or not parts:
                parts = (*parts, os.path.basename(src))
            folder_parts, name = parts[:-1], parts[-1]
            if folder_parts not in folder_ids:
                folder = self.ensure_folder(join(folder_parts))
                folder_ids[folder_parts] = folder.id
                named: dict[str, list[DriveFile]] = {}
                if replace:
                    for f in listing.list_children(self.transport, folder.id):
                        if not f.is_folder:
                            named.setdefault(f.name, []).append(f)
                existing[folder_parts] = {n: pick(fs) for n, fs in named.items()}
            old = existing[folder_parts].get(name)
            if old is not None:
                target = UploadTarget(name=name, file_id=old.id)
            else:
                target = UploadTarget(name=name, parent_id=folder_ids[folder_parts])
            jobs.append((join(parts), (src, target)))

        def one(job: tuple[str, UploadTarget]) -> UploadResult:
            src, target = job
            if target.file_id is None:
                target.new_id = self._ids.take()
            result = _upload(
                self.transport, src, target, chunk_size=self.chunk_size,
                multipart_limit=self.multipart_limit, progress=progress.branched(),
                delete=self._delete_one,
            )  # fmt: skip
            self._remember(result.file)
            progress.file_done(result.file.name)
            return result

        return run_parallel(jobs, one, workers=workers or self.workers, progress=progress)

    def download_many(
        self,
        pairs: Iterable[tuple[PathLike | DriveFile, PathLike]],
        *,
        progress: Callback = NO_PROGRESS,
        workers: int | None = None,
    ) -> PoolOutcome[str, _download.DownloadResult]:
        """Download ``(drive path or file, local path)`` pairs in parallel."""
        pairs = list(pairs)
        progress.set_files(len(pairs))
        jobs = [(os.fspath(local), (src, local)) for src, local in pairs]
        return run_parallel(
            jobs,
            lambda job: self.download(job[0], job[1], progress=progress),
            workers=workers or self.workers,
            progress=progress,
        )

    # -- delete, trash, quota ---------------------------------------------------------------

    def delete(
        self,
        targets: PathLike | DriveFile | Sequence[PathLike | DriveFile],
        *,
        progress: Callback = NO_PROGRESS,
    ) -> None:
        """Delete permanently (no trash; a folder takes its contents with it), in batches.

        Raises :class:`DriveError` naming what could not be deleted.
        """
        if isinstance(targets, (str, os.PathLike, DriveFile)):
            targets = [targets]
        ids = [t.id if isinstance(t, DriveFile) else self.stat(t).id for t in targets]
        self.delete_ids(ids, progress=progress)

    def delete_ids(self, file_ids: Sequence[str], *, progress: Callback = NO_PROGRESS) -> None:
        """Delete files by id permanently, in batches of at most 100."""
        failed = housekeeping.delete_many(self.transport, file_ids, progress=progress)
        for file_id in file_ids:
            self.resolver.cache.forget_id(file_id)
        if failed:
            first_id, first = next(iter(failed.items()))
            raise DriveError(
                f"{len(failed)} of {len(file_ids)} deletes failed; first: {first_id}: {first}"
            ) from first

    def _delete_one(self, file_id: str) -> None:
        files = self.transport.files
        self.transport.execute(lambda: files.delete(fileId=file_id), what=file_id)
        self.resolver.cache.forget_id(file_id)

    def trash(self, target: PathLike | DriveFile) -> None:
        """Move to the trash (still counted against quota until :meth:`empty_trash`)."""
        file = target if isinstance(target, DriveFile) else self.stat(target)
        housekeeping.trash(self.transport, file.id)
        self.resolver.cache.forget_id(file.id)

    def empty_trash(self) -> None:
        housekeeping.empty_trash(self.transport)

    def quota(self) -> Quota:
        return housekeeping.quota(self.transport)
