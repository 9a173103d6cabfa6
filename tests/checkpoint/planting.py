"""The other writer of a run folder: a second Drive client that plants checkpoints in it.

Drive keeps whatever bytes a writer uploads and reports their md5 (files.create/update,
https://developers.google.com/drive/api/reference/rest/v3/files), so a planted manifest's md5s
agree with its blobs: they prove nothing about who wrote them.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time

from colab_magics.checkpoint import rng


class Plant:
    """Unpickling this creates ``marker``: proof that a payload was deserialized."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def values_json(entries: list[dict], values: dict | None = None, rng_state=None) -> bytes:
    """A ``values.json`` blob: the index of entries, plain values and RNG state."""
    document = {
        "format": 1,
        "entries": entries,
        "values": values or {},
        "rng": rng.capture_rng() if rng_state is None else rng_state,
    }
    return json.dumps(document).encode()


def plant(
    other, folder: str, run: str, blobs: dict[str, bytes], *, step: int = 5, fields=None
) -> str:
    """Upload ``blobs`` and a manifest listing them under their keys (with their true md5s) as
    checkpoint ``step`` of ``run`` in ``folder``; ``fields`` overrides the manifest's.
    Returns the manifest's name."""
    tag = secrets.token_hex(4)
    listed = []
    for i, (name, data) in enumerate(blobs.items()):
        # Drive's name is plain: the manifest's entry is what the restore reads.
        uploaded = other.upload(data, f"{folder}/step-{step:09d}-{tag}/blob{i}", replace=False)
        listed.append({"name": name, "size": len(data), "md5": hashlib.md5(data).hexdigest(),
                       "file_id": uploaded.file.id})  # fmt: skip
    document = {"format": 1, "run": run, "step": step, "created": time.time(), "versions": {},
                "blobs": listed, **(fields or {})}  # fmt: skip
    name = f"manifest-{step:09d}-{tag}.json"
    time.sleep(0.01)  # created after every checkpoint the run wrote
    other.upload(json.dumps(document).encode(), f"{folder}/{name}", replace=False)
    return name


def genuine_blobs(client, folder: str) -> dict[str, bytes]:
    """The blobs of the newest checkpoint in ``folder``, as the other writer can read them."""
    manifests = [f for f in client.listdir(folder) if f.name.startswith("manifest-")]
    newest = max(manifests, key=lambda f: f.name)
    document = json.loads(client.read_bytes(newest))
    return {b["name"]: client.read_bytes(client.file(b["file_id"])) for b in document["blobs"]}
