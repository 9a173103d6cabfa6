"""``colab_magics.gcs.pull`` against a real GCS emulator through google-cloud-storage.

What the emulator (gcp-storage-emulator 2026.7.19) does not model, and how these tests cope:
it ignores ``ifGenerationMatch`` and ``generation=`` on reads (GCS would answer 412 for an
object replaced mid-download; the hash check catches it here instead), and it gives every
object an md5, composed ones included (GCS keeps only a crc32c for composite objects:
https://cloud.google.com/storage/docs/hashes-etags), so the crc32c tests drop the md5 from the
emulator's stored metadata. Ranged reads (``Range: bytes=N-M``, 206) it does support.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from colab_magics.gcs import GcsClient, GcsIntegrityError, GcsMissingLibrary, pull
from colab_magics.gcs.download import download, part_path
from colab_magics.gcs.hashes import compiled_crc32c
from colab_magics.gcs.paths import unsafe_reason
from colab_magics.progress import Progress
from colab_magics.sync.errors import SyncAborted, SyncError
from tests.gcs.cutproxy import CutProxy, RecordingProxy


def put(bucket, name: str, data: bytes):
    blob = bucket.blob(name)
    blob.upload_from_string(data)
    return blob


def small_tree(bucket, n: int = 60) -> dict[str, bytes]:
    files = {f"train/{i % 5}/img-{i:03d}.bin": os.urandom(100 + i * 37) for i in range(n)}
    files["train/labels.csv"] = b"id,label\n1,cat\n"
    files["train/empty.txt"] = b""
    files["train/dé jà vu (1).txt"] = "unicode ✓".encode()
    for name, data in files.items():
        put(bucket, name, data)
    put(bucket, "other/not-me.txt", b"outside the prefix")
    return {name[len("train/") :]: data for name, data in files.items()}


def read_tree(root) -> dict[str, bytes]:
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root).replace(os.sep, "/")] = Path(path).read_bytes()
    return found


def test_pulls_many_small_objects_in_parallel_with_progress(gcs, bucket, tmp_path, cache_dir):
    expected = small_tree(bucket)
    progress = Progress("pull")
    report = pull(
        "gs://data-bucket/train", tmp_path / "data", client=gcs, jobs=16, progress=progress,
        cache_dir=cache_dir,
    )  # fmt: skip
    assert report.ok, report.errors
    assert read_tree(tmp_path / "data") == expected
    assert report.downloaded == len(expected) and report.skipped == 0
    assert report.bytes == sum(len(d) for d in expected.values())
    snap = progress.snapshot()
    assert snap["files_done"] == snap["files_total"] == len(expected)
    assert snap["bytes_done"] == snap["bytes_total"] == report.bytes
    assert snap["state"] == "done"


def test_a_rerun_skips_what_is_unchanged_and_fetches_what_changed(gcs, bucket, tmp_path, cache_dir):
    expected = small_tree(bucket, n=20)
    pull("gs://data-bucket/train/", tmp_path / "data", client=gcs, cache_dir=cache_dir)
    again = pull("gs://data-bucket/train", tmp_path / "data", client=gcs, cache_dir=cache_dir)
    assert (again.downloaded, again.skipped, again.hashed) == (0, len(expected), 0)

    put(bucket, "train/labels.csv", b"id,label\n1,dog\n")  # same size, new content
    (tmp_path / "data" / "0" / "img-000.bin").write_bytes(b"damaged locally")
    third = pull("gs://data-bucket/train", tmp_path / "data", client=gcs, cache_dir=cache_dir)
    assert (third.downloaded, third.skipped) == (2, len(expected) - 2)
    assert (tmp_path / "data" / "labels.csv").read_bytes() == b"id,label\n1,dog\n"
    assert read_tree(tmp_path / "data")["0/img-000.bin"] == expected["0/img-000.bin"]


def test_one_object_to_a_file_or_into_a_folder(gcs, bucket, tmp_path, cache_dir):
    put(bucket, "sketchrnn/eye.npz", b"npz bytes")
    pull("gs://data-bucket/sketchrnn/eye.npz", tmp_path / "x.npz", client=gcs, cache_dir=cache_dir)
    assert (tmp_path / "x.npz").read_bytes() == b"npz bytes"
    (tmp_path / "into").mkdir()
    pull("gs://data-bucket/sketchrnn/eye.npz", tmp_path / "into", client=gcs, cache_dir=cache_dir)
    assert (tmp_path / "into" / "eye.npz").read_bytes() == b"npz bytes"


def test_a_cut_connection_resumes_where_it_stopped(gcs_emulator, bucket, tmp_path, monkeypatch):
    data = os.urandom(6 * 1024 * 1024 + 123)
    put(bucket, "big/weights.bin", data)
    proxy = CutProxy(gcs_emulator.port, cut_after=2 * 1024 * 1024, cuts=2)
    try:
        client = GcsClient(endpoint=proxy.url, anonymous=True)
        obj = client.stat("data-bucket", "big/weights.bin")
        progress = Progress("pull")
        from colab_magics.progress import TransferProgress

        transfer = TransferProgress(progress)
        received = download(
            client, obj, tmp_path / "w.bin", progress=transfer, sleep=lambda s: None
        )
    finally:
        proxy.close()
    assert proxy.cut == 2 and transfer.retries == 2
    # Every byte came once: each retry asked only for the rest (a restart would be 3x).
    assert received == len(data)
    assert (tmp_path / "w.bin").read_bytes() == data
    assert not os.path.exists(part_path(str(tmp_path / "w.bin"), obj))


def test_a_killed_run_resumes_from_its_temporary_file(gcs, bucket, tmp_path):
    data = os.urandom(3 * 1024 * 1024)
    put(bucket, "big/w.bin", data)
    obj = gcs.stat("data-bucket", "big/w.bin")
    dest = str(tmp_path / "w.bin")
    # What a run killed after 1 MiB leaves behind.
    with open(part_path(dest, obj), "wb") as f:
        f.write(data[: 1024 * 1024])
    received = download(gcs, obj, dest)
    assert received == len(data) - 1024 * 1024
    assert Path(dest).read_bytes() == data
    assert os.listdir(tmp_path) == ["w.bin"]


def test_a_temporary_file_of_another_generation_is_not_reused(gcs, bucket, tmp_path):
    put(bucket, "big/w.bin", b"old" * 1000)
    old = gcs.stat("data-bucket", "big/w.bin")
    dest = str(tmp_path / "w.bin")
    with open(part_path(dest, old), "wb") as f:
        f.write(b"old" * 500)
    new_data = b"new" * 1000
    put(bucket, "big/w.bin", new_data)
    new = gcs.stat("data-bucket", "big/w.bin")
    assert download(gcs, new, dest) == len(new_data)
    assert Path(dest).read_bytes() == new_data


def _replace_mid_download(gcs_emulator, bucket, tmp_path, *, composite: bool):
    """Cut the download once and replace the object (same size) before it resumes."""
    size = 3 * 1024 * 1024
    put(bucket, "big/w.bin", b"a" * size)
    if composite:
        gcs_emulator.drop_md5("data-bucket", "big/w.bin")
    proxy = CutProxy(gcs_emulator.port, cut_after=1024 * 1024, cuts=1)
    try:
        client = GcsClient(endpoint=proxy.url, anonymous=True)
        obj = client.stat("data-bucket", "big/w.bin")
        assert (obj.md5 is None) == composite and obj.crc32c

        def replace(seconds):
            put(bucket, "big/w.bin", b"b" * size)

        with pytest.raises(GcsIntegrityError, match="did not verify") as err:
            download(client, obj, tmp_path / "w.bin", sleep=replace)
    finally:
        proxy.close()
    assert os.listdir(tmp_path) == []  # neither the final nor the temporary name
    return err.value


def test_an_object_replaced_mid_download_fails_verification(gcs_emulator, bucket, tmp_path):
    error = str(_replace_mid_download(gcs_emulator, bucket, tmp_path, composite=False))
    assert ("crc32c" if compiled_crc32c() else "md5") in error


def test_a_download_is_checked_by_the_cheaper_of_the_two_hashes(
    gcs_emulator, bucket, gcs, tmp_path
):
    """Every object has a crc32c, GCS's recommended check (hashes-etags); compiled it costs a
    fraction of md5, so it is the check, and the md5 is not read. Without the C extension md5
    is cheaper, and the roles swap."""
    used, unused = ("crc32c", "md5Hash") if compiled_crc32c() else ("md5Hash", "crc32c")
    data = os.urandom(2 * 1024 * 1024)
    put(bucket, "h/x.bin", data)
    gcs_emulator.wrong_hash("data-bucket", "h/x.bin", unused)
    download(gcs, gcs.stat("data-bucket", "h/x.bin"), tmp_path / "ok.bin")
    assert (tmp_path / "ok.bin").read_bytes() == data
    gcs_emulator.wrong_hash("data-bucket", "h/x.bin", used)
    with pytest.raises(GcsIntegrityError, match="did not verify"):
        download(gcs, gcs.stat("data-bucket", "h/x.bin"), tmp_path / "bad.bin")
    assert sorted(os.listdir(tmp_path)) == ["ok.bin"]


def test_a_composite_object_is_verified_by_crc32c(gcs_emulator, bucket, tmp_path, cache_dir, gcs):
    assert "crc32c" in str(_replace_mid_download(gcs_emulator, bucket, tmp_path, composite=True))
    put(bucket, "parts/joined.bin", b"x" * 5000)
    gcs_emulator.drop_md5("data-bucket", "parts/joined.bin")
    first = pull("gs://data-bucket/parts", tmp_path / "p", client=gcs, cache_dir=cache_dir)
    assert first.downloaded == 1 and (tmp_path / "p" / "joined.bin").read_bytes() == b"x" * 5000
    again = pull("gs://data-bucket/parts", tmp_path / "p", client=gcs, cache_dir=cache_dir)
    assert (again.downloaded, again.skipped, again.hashed) == (0, 1, 0)


def test_pull_reports_a_changed_object_and_keeps_the_rest(
    gcs_emulator, bucket, tmp_path, cache_dir
):
    put(bucket, "d/ok.txt", b"fine")
    put(bucket, "d/big.bin", b"a" * (3 * 1024 * 1024))
    proxy = CutProxy(gcs_emulator.port, cut_after=1024 * 1024, cuts=1)
    try:
        client = GcsClient(endpoint=proxy.url, anonymous=True)
        progress = Progress("pull")

        def on_update(p):
            if p.get("retries") and client.stat("data-bucket", "d/big.bin").size:
                put(bucket, "d/big.bin", b"b" * (3 * 1024 * 1024))

        progress.subscribe(on_update)
        report = pull("gs://data-bucket/d", tmp_path / "d", client=client, progress=progress,
                      jobs=1, cache_dir=cache_dir)  # fmt: skip
    finally:
        proxy.close()
    assert list(report.errors) == ["big.bin"] and "did not verify" in report.errors["big.bin"]
    assert report.downloaded == 1 and os.listdir(tmp_path / "d") == ["ok.txt"]
    assert progress.get("state") == "failed"
    with pytest.raises(SyncAborted, match="1 failed"):
        report.check()


def test_anonymous_client_for_a_public_bucket_sends_no_credentials(
    gcs_emulator, bucket, tmp_path, monkeypatch, cache_dir
):
    """No application-default credentials anywhere: the client goes anonymous, as
    ``gsutil``/``Client.create_anonymous_client()`` do for public data
    (https://cloud.google.com/storage/docs/access-public-data)."""
    put(bucket, "quickdraw/eye.npz", b"public data")
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    proxy = RecordingProxy(gcs_emulator.port)
    try:
        client = GcsClient(endpoint=proxy.url)
        pull("gs://data-bucket/quickdraw/eye.npz", tmp_path / "eye.npz", client=client,
             cache_dir=cache_dir)  # fmt: skip
    finally:
        proxy.close()
    assert client.anonymous
    assert (tmp_path / "eye.npz").read_bytes() == b"public data"
    assert b"GET /" in proxy.sent and b"authorization:" not in proxy.sent.lower()


def test_unsafe_object_names_are_refused_and_the_rest_pulled(gcs, bucket, tmp_path, cache_dir):
    """GCS object names are free text (https://cloud.google.com/storage/docs/objects#naming):
    only '.' and '..' as a whole name are refused, so ``a/../../x`` can exist. This emulator
    refuses any '..' component on upload, so that case is checked on the rule itself."""
    put(bucket, "ds/a//b.txt", b"double slash")
    put(bucket, "ds/./c.txt", b"dot")
    put(bucket, "ds/good.txt", b"good")
    report = pull("gs://data-bucket/ds", tmp_path / "t", client=gcs, cache_dir=cache_dir)
    assert sorted(report.errors) == ["./c.txt", "a//b.txt"]
    assert read_tree(tmp_path / "t") == {"good.txt": b"good"}
    assert sorted(os.listdir(tmp_path)) == ["cache", "t"]
    assert unsafe_reason("../../escape.txt") and unsafe_reason("a/..") and unsafe_reason("a\\b")
    assert unsafe_reason("a/b c (1).txt") is None


def test_extract_reuses_the_safe_extractor(gcs, bucket, tmp_path, cache_dir):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in {"a.txt": b"A", "sub/b.txt": b"BB"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    put(bucket, "archives/ds.tar.gz", buf.getvalue())
    report = pull("gs://data-bucket/archives/ds.tar.gz", tmp_path / "out", client=gcs,
                  extract=True, cache_dir=cache_dir)  # fmt: skip
    assert report.extracted == 2
    assert read_tree(tmp_path / "out") == {"a.txt": b"A", "sub/b.txt": b"BB"}
    assert not os.listdir(cache_dir / "archives")


def test_a_finished_extraction_is_not_fetched_again_until_the_object_changes(
    gcs, bucket, tmp_path, cache_dir
):
    """A re-run finds every entry still as extracted and downloads nothing; a new generation
    of the archive is a different archive."""
    import io
    import zipfile

    def zipped(text: bytes) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("a.txt", text)
            zf.writestr("sub/b.txt", b"BB")
        return buf.getvalue()

    put(bucket, "ds.zip", zipped(b"one"))
    out = tmp_path / "out"
    first = pull("gs://data-bucket/ds.zip", out, client=gcs, extract=True, cache_dir=cache_dir)
    assert (first.downloaded, first.extracted) == (1, 2)
    calls = gcs.requests
    again = pull("gs://data-bucket/ds.zip", out, client=gcs, extract=True, cache_dir=cache_dir)
    assert (again.downloaded, again.extracted, again.skipped) == (0, 0, 2)
    assert gcs.requests - calls == 1  # the object's metadata; no download
    put(bucket, "ds.zip", zipped(b"two"))
    third = pull("gs://data-bucket/ds.zip", out, client=gcs, extract=True, cache_dir=cache_dir)
    assert third.downloaded == 1 and (out / "a.txt").read_bytes() == b"two"


def test_bad_urls_and_missing_paths_are_one_line_errors(gcs, bucket, tmp_path):
    with pytest.raises(SyncError, match="not a bucket name"):
        pull("gs://No_Such!/x", tmp_path, client=gcs)
    with pytest.raises(SyncError, match="matches no object"):
        pull("gs://data-bucket/nothing/here", tmp_path / "x", client=gcs)
    with pytest.raises(SyncError, match="not an archive"):
        pull("gs://data-bucket/a.bin", tmp_path / "x", client=gcs, extract=True)


def test_without_the_library_a_gs_path_names_the_extra(tmp_path, monkeypatch):
    import google.cloud

    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)  # as if not installed
    monkeypatch.delattr(google.cloud, "storage", raising=False)
    with pytest.raises(GcsMissingLibrary, match=r"colab_magics\[gcs\]") as err:
        pull("gs://data-bucket/x", tmp_path / "x")
    assert "\n" not in str(err.value)


def test_importing_the_package_does_not_import_the_library():
    code = (
        "import sys, colab_magics, colab_magics.gcs, colab_magics.gcs.store; "
        "assert 'google.cloud.storage' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})


def test_an_unreachable_endpoint_stops_the_pull_with_one_message(tmp_path, monkeypatch):
    from tests.gcs.conftest import free_port

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    client = GcsClient(endpoint=f"http://127.0.0.1:{free_port()}", anonymous=True,
                       retry_deadline=1.0)  # fmt: skip
    progress = Progress("pull")
    with pytest.raises(SyncAborted, match="could not be reached") as err:
        pull("gs://data-bucket/x", tmp_path / "x", client=client, progress=progress)
    assert "\n" not in str(err.value) and progress.get("state") == "failed"
