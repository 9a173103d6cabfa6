"""One GCS client for ``gs://`` paths, on google-cloud-storage, imported only when used.

Credentials: application-default ones when there are any (on Colab, what
``google.colab.auth.authenticate_user()`` installs), otherwise anonymous, which is enough for
public buckets. The endpoint is the library's ``STORAGE_EMULATOR_HOST`` when set, or
``endpoint=`` (an emulator, a proxy); the library itself talks to GCS's JSON API.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from colab_magics.gcs.errors import EXTRA_HINT, GcsMissingLibrary, GcsNotFound, map_exception
from colab_magics.gcs.hashes import md5_hex
from colab_magics.gcs.paths import GsPath

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
POOL_SIZE = 64


def import_storage() -> Any:
    """``google.cloud.storage``, or a one-line error naming the extra that installs it."""
    try:
        from google.cloud import storage
    except ImportError:
        raise GcsMissingLibrary(
            f"gs:// paths need google-cloud-storage, which is not installed: {EXTRA_HINT}"
        ) from None
    return storage


@dataclasses.dataclass(frozen=True)
class GcsObject:
    """What a listing or a metadata read says about one object (one generation of it)."""

    bucket: str
    name: str
    size: int
    generation: int
    md5: str | None
    """Hex; None for composite objects."""
    crc32c: str | None
    """Base64, as GCS gives it."""
    created: float
    """Unix time the generation was written (``timeCreated``)."""
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)
    """The object's custom metadata."""

    @property
    def id(self) -> str:
        """``name#generation``: names this content, as a Drive file id names a file."""
        return f"{self.name}#{self.generation}"

    @property
    def url(self) -> str:
        return f"gs://{self.bucket}/{self.name}"

    @classmethod
    def from_blob(cls, blob: Any) -> GcsObject:
        created = blob.time_created
        return cls(
            bucket=blob.bucket.name,
            name=blob.name,
            size=int(blob.size or 0),
            generation=int(blob.generation or 0),
            md5=md5_hex(blob.md5_hash),
            crc32c=blob.crc32c,
            created=created.timestamp() if isinstance(created, dt.datetime) else 0.0,
            metadata=dict(blob.metadata or {}),
        )


def split_id(object_id: str) -> tuple[str, int | None]:
    """``name#generation`` -> ``(name, generation)``."""
    name, sep, gen = object_id.rpartition("#")
    if sep and gen.isdigit():
        return name, int(gen)
    return object_id, None


class GcsClient:
    """A thread-safe facade over ``google.cloud.storage.Client`` that counts its calls."""

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        anonymous: bool | None = None,
        credentials: Any = None,
        project: str | None = None,
        retry_deadline: float = 30.0,
    ) -> None:
        storage = import_storage()
        from google.cloud.storage.retry import DEFAULT_RETRY

        # The library retries metadata calls for up to 120 s; an unreachable endpoint should
        # not hold a notebook cell that long before it says so.
        self.retry = DEFAULT_RETRY.with_deadline(retry_deadline)
        options = {"api_endpoint": endpoint.rstrip("/")} if endpoint else None
        # The library itself goes anonymous for STORAGE_EMULATOR_HOST; an explicit endpoint
        # may be a proxy in front of real GCS, so it still uses credentials where there are.
        emulated = bool(os.environ.get(EMULATOR_ENV)) and not endpoint
        if credentials is None and not anonymous and not emulated:
            credentials, found = _default_credentials()
            project = project or found
        if credentials is None:
            from google.auth.credentials import AnonymousCredentials

            credentials = AnonymousCredentials()
            anonymous = True
        self.anonymous = bool(anonymous)
        self.endpoint = endpoint or os.environ.get(EMULATOR_ENV) or "https://storage.googleapis.com"
        self.description = f"GCS at {self.endpoint}"
        self.storage = storage
        self.client = storage.Client(
            project=project or "<none>",
            credentials=credentials,
            client_options=options,
            _http=_session(credentials),
        )
        self._lock = threading.Lock()
        self.requests = 0

    def count(self, n: int = 1) -> None:
        with self._lock:
            self.requests += n

    def blob(self, bucket: str, name: str, generation: int | None = None) -> Any:
        return self.client.bucket(bucket).blob(name, generation=generation)

    def stat(self, bucket: str, name: str, generation: int | None = None) -> GcsObject | None:
        """The object ``name`` (that generation, if given), or None if there is none."""
        if not name or name.endswith("/"):
            return None
        self.count()
        try:
            blob = self.client.bucket(bucket).get_blob(
                name, generation=generation, retry=self.retry
            )
        except Exception as exc:
            raise map_exception(exc, what=f"gs://{bucket}/{name}") from exc
        return GcsObject.from_blob(blob) if blob is not None else None

    def list(
        self, bucket: str, prefix: str = "", *, delimiter: str | None = None
    ) -> Iterator[GcsObject]:
        """Every object whose name starts with ``prefix`` (one level with ``delimiter='/'``)."""
        try:
            pages = self.client.list_blobs(
                bucket, prefix=prefix or None, delimiter=delimiter, retry=self.retry
            ).pages
            for page in pages:
                self.count()
                for blob in page:
                    yield GcsObject.from_blob(blob)
        except Exception as exc:
            raise map_exception(exc, what=f"gs://{bucket}/{prefix}") from exc

    def find(self, path: GsPath) -> tuple[GcsObject | None, list[GcsObject]]:
        """``path`` as one object, else the objects below it as a folder (``prefix/``)."""
        single = self.stat(path.bucket, path.name) if path.name else None
        if single is not None:
            return single, []
        prefix = path.name.rstrip("/") + "/" if path.name.strip("/") else ""
        return None, list(self.list(path.bucket, prefix))

    def delete(self, obj: GcsObject) -> None:
        """Delete this generation of ``obj`` (a newer one written since stays)."""
        self.count()
        try:
            self.blob(obj.bucket, obj.name).delete(
                if_generation_match=obj.generation, retry=self.retry
            )
        except Exception as exc:
            error = map_exception(exc, what=obj.url)
            if isinstance(error, GcsNotFound):
                return  # already gone: what delete wanted
            raise error from exc


def _default_credentials() -> tuple[Any, str | None]:
    """Application-default credentials and project, or ``(None, None)`` when there are none."""
    import google.auth
    import google.auth.exceptions

    try:
        return google.auth.default(scopes=[SCOPE])
    except google.auth.exceptions.DefaultCredentialsError:
        return None, None


def _session(credentials: Any) -> Any:
    """An authorized session whose connection pool fits a parallel pull: requests keeps 10
    connections per host by default, and threads beyond that reconnect for every object."""
    import requests.adapters
    from google.auth.transport.requests import AuthorizedSession

    session = AuthorizedSession(credentials)
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def open_client(client: GcsClient | None = None, *, endpoint: str | None = None) -> GcsClient:
    """``client``, or a new one (see :class:`GcsClient`)."""
    return client if client is not None else GcsClient(endpoint=endpoint)
