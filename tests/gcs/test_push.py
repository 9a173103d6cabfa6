"""``colab_magics.gcs.push`` against the GCS emulator.

The emulator checks an upload's ``md5Hash`` against the bytes (as GCS does) but ignores
``ifGenerationMatch``, so the refusal of a concurrent overwrite cannot be shown here; what is
shown is that every upload is confirmed by the md5 GCS stores and that a re-push skips.
"""

from __future__ import annotations

import hashlib

from colab_magics.gcs import push
from colab_magics.gcs.hashes import md5_hex
from colab_magics.progress import Progress


def make_tree(root, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def stored(gcs, prefix: str) -> dict[str, bytes]:
    return {
        b.name: b.download_as_bytes() for b in gcs.client.list_blobs("data-bucket", prefix=prefix)
    }


FILES = {
    "a.txt": b"alpha",
    "empty.bin": b"",
    "sub/deeper/c.bin": bytes(range(256)) * 40000,  # past the library's multipart limit
    "données/résumé (1).txt": "✓".encode(),
}


def test_push_a_tree_then_skip_then_replace(gcs, bucket, tmp_path, cache_dir):
    make_tree(tmp_path / "run", FILES)
    progress = Progress("push")
    report = push(tmp_path / "run", "gs://data-bucket/runs/r1", client=gcs, progress=progress,
                  cache_dir=cache_dir)  # fmt: skip
    assert report.ok, report.errors
    assert stored(gcs, "runs/r1/") == {f"runs/r1/{k}": v for k, v in FILES.items()}
    assert report.uploaded == len(FILES) and report.bytes == sum(map(len, FILES.values()))
    assert progress.get("files_done") == len(FILES) and progress.get("state") == "done"
    for blob in gcs.client.list_blobs("data-bucket", prefix="runs/r1/"):
        assert md5_hex(blob.md5_hash) == hashlib.md5(FILES[blob.name[8:]]).hexdigest()

    again = push(tmp_path / "run", "gs://data-bucket/runs/r1", client=gcs, cache_dir=cache_dir)
    assert (again.uploaded, again.skipped, again.hashed) == (0, len(FILES), 0)

    (tmp_path / "run" / "a.txt").write_bytes(b"ALPHA!")
    third = push(tmp_path / "run", "gs://data-bucket/runs/r1", client=gcs, cache_dir=cache_dir)
    assert (third.uploaded, third.replaced, third.skipped) == (1, 1, len(FILES) - 1)
    assert stored(gcs, "runs/r1/a.txt") == {"runs/r1/a.txt": b"ALPHA!"}


def test_push_one_file_to_a_name_or_below_a_prefix(gcs, bucket, tmp_path, cache_dir):
    (tmp_path / "model.pt").write_bytes(b"weights")
    push(tmp_path / "model.pt", "gs://data-bucket/final.pt", client=gcs, cache_dir=cache_dir)
    push(tmp_path / "model.pt", "gs://data-bucket/keep/", client=gcs, cache_dir=cache_dir)
    assert stored(gcs, "") == {"final.pt": b"weights", "keep/model.pt": b"weights"}
