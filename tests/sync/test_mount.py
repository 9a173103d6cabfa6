"""With Colab's mount simulated: pushing what the mount has not uploaded yet, through the API."""

from __future__ import annotations

from colab_magics.emulator import start_emulator
from colab_magics.sync import push
from tests.sync.conftest import make_client, make_tree


def test_push_from_the_mount_saves_what_it_has_not_uploaded(tmp_path, cache_dir):
    mnt = tmp_path / "mnt"
    handle = start_emulator(tmp_path / "drive", mount=mnt, mount_lag=60)
    client = make_client(handle, mount_root=str(mnt))
    try:
        files = {f"ck/step{i}.pt": bytes([i]) * 1000 for i in range(5)}
        make_tree(mnt / "run", files, ())
        assert handle.mount.pending() == sorted(f"run/{k}" for k in files)
        # Mount paths name Drive paths: the mount's folder is pushed to where it mirrors.
        report = push(mnt / "run", str(mnt / "run"), client=client, cache_dir=cache_dir)
        assert report.ok and report.uploaded == len(files)
        # Asking the API is the only truth: Drive holds every byte although the mount has not
        # uploaded them (a runtime dying now would lose nothing).
        assert {k: client.read_bytes(f"run/{k}") for k in files} == files
        handle.mount.sync_now()  # the mount's late upload lands on the same files
        names = sorted(rel for rel, f in client.walk("run") if not f.is_folder)
        assert names == sorted(files)  # each once: no duplicates from the two writers
        again = push(mnt / "run", str(mnt / "run"), client=client, cache_dir=cache_dir)
        assert again.uploaded == 0
    finally:
        client.close()
        handle.stop()
