"""One runtime per run in a bucket: the lease of ``colab_magics.checkpoint.lease``, on objects.

Each runtime that wants the run writes ``PREFIX/lease-<token>`` and follows the same rules as
on Drive (the oldest live lease holds the run; a lease unrenewed for its TTL is fenced). What
a bucket adds are preconditions, which make each step safer than on Drive:

- a lease is created with ``ifGenerationMatch=0``, and renewed by rewriting it with
  ``ifGenerationMatch=<the generation we wrote last>``: once another runtime has deleted it (a
  takeover), the renewal fails (412) instead of bringing it back, and this runtime stops;
- a stale lease is deleted with the generation that was judged stale, so a renewal that lands
  in between keeps it.

A rewrite is a new generation with a new ``timeCreated``: that is the heartbeat. The lease's
age in the order is the first generation's ``timeCreated``, carried along in its metadata.
"""

from __future__ import annotations

import hashlib

from colab_magics.checkpoint.lease import NAME, Lease, LeaseFile, LeaseGone, hold
from colab_magics.gcs.client import GcsClient, GcsObject
from colab_magics.gcs.errors import GcsError, GcsNotFound, GcsPreconditionFailed
from colab_magics.gcs.push import upload_bytes
from colab_magics.progress import Progress

_EMPTY_MD5 = hashlib.md5(b"").hexdigest()
_SINCE = "lease_created"
"""Metadata key: the ``timeCreated`` of the lease's first generation (its place in line)."""


class BucketLeaseFiles:
    """:class:`colab_magics.checkpoint.lease.LeaseFiles` below one bucket prefix."""

    store = "GCS"
    errors: tuple[type[BaseException], ...] = (GcsError,)

    def __init__(self, client: GcsClient, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _name(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    @staticmethod
    def _of(obj: GcsObject) -> LeaseFile:
        try:
            since = float(obj.metadata.get(_SINCE, ""))
        except ValueError:
            since = obj.created
        return LeaseFile(obj.name, since, obj.created, obj.metadata, obj)

    def _write(self, name: str, props: dict[str, str], generation: int) -> GcsObject:
        return upload_bytes(
            self.client,
            b"",
            self.bucket,
            name,
            _EMPTY_MD5,
            if_generation_match=generation,
            metadata=props,
        )

    def create(self, name: str, props: dict[str, str]) -> LeaseFile:
        return self._of(self._write(self._name(name), props, 0))

    def renew(self, file: LeaseFile) -> LeaseFile:
        try:
            # The first generation's time on GCS's clock stays this lease's place in line.
            props = {**file.props, _SINCE: repr(file.created)}
            return self._of(self._write(file.id, props, file.ref.generation))
        except (GcsPreconditionFailed, GcsNotFound):
            raise LeaseGone(file.id) from None

    def list(self) -> list[LeaseFile]:
        found = self.client.list(self.bucket, self._name("lease-"))
        start = len(self.prefix) + 1 if self.prefix else 0
        return [self._of(o) for o in found if NAME.match(o.name[start:])]

    def get(self, file: LeaseFile) -> LeaseFile | None:
        obj = self.client.stat(self.bucket, file.id)
        return self._of(obj) if obj is not None else None

    def delete(self, file: LeaseFile) -> None:
        try:
            self.client.delete(file.ref)  # only the generation that was read
        except GcsPreconditionFailed:
            raise LeaseGone(file.id) from None


def acquire(
    client: GcsClient,
    bucket: str,
    prefix: str,
    *,
    run: str,
    progress: Progress,
    ttl: float | None = None,
) -> Lease:
    """Take run ``run``'s lease below ``gs://bucket/prefix`` (see the module docstring)."""
    files = BucketLeaseFiles(client, bucket, prefix)
    return hold(files, run=run, progress=progress, ttl=ttl)
