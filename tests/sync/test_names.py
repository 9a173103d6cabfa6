"""push and pull with names that differ only in case, which Drive's ``name =`` query conflates
(rclone's Drive backend, backend/drive/drive.go ``list``: "the `=` operator is case
insensitive") and the emulator conflates the same way."""

from __future__ import annotations

import warnings

from colab_magics.drive.paths import DuplicateNameWarning
from colab_magics.sync import pull, push
from tests.sync.conftest import drive_tree, make_client, make_tree, read_tree

TWINS = {
    "Model.ckpt": b"upper",
    "model.ckpt": b"lower",
    "MODEL.CKPT": b"shout",
    "Sub/x.txt": b"in Sub",
    "sub/x.txt": b"in sub",
    "sub/X.txt": b"in sub, upper",
}


def test_case_twins_round_trip_through_push_and_pull(emulator, client, tmp_path, cache_dir):
    src = make_tree(tmp_path / "src", TWINS, ())
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateNameWarning)  # none of these is a duplicate
        first = push(src, "Run", client=client, cache_dir=cache_dir)
        assert first.ok and first.uploaded == len(TWINS) and first.duplicates == {}
        assert drive_tree(client, "Run") == TWINS

        fresh = make_client(emulator)  # knows nothing cached: sees Drive's listings only
        try:
            report = pull("Run", tmp_path / "back", client=fresh, cache_dir=cache_dir)
            assert report.ok and report.duplicates == {} and report.downloaded == len(TWINS)
            assert read_tree(tmp_path / "back")[0] == TWINS
            again = push(src, "Run", client=fresh, cache_dir=cache_dir)
            assert again.ok and again.uploaded == 0 and again.skipped == len(TWINS)
        finally:
            fresh.close()


def test_push_of_one_file_writes_its_exact_name_beside_a_case_twin(
    emulator, client, tmp_path, cache_dir
):
    client.upload(b"keep me", "run/Weights.bin")
    local = make_tree(tmp_path / "src", {"weights.bin": b"new"}, ())
    fresh = make_client(emulator)
    try:
        report = push(local / "weights.bin", "run/weights.bin", client=fresh, cache_dir=cache_dir)
        assert report.ok and report.uploaded == 1 and report.replaced == 0
        assert drive_tree(fresh, "run") == {"Weights.bin": b"keep me", "weights.bin": b"new"}
        pull("run/weights.bin", tmp_path / "w.bin", client=fresh, cache_dir=cache_dir)
        assert (tmp_path / "w.bin").read_bytes() == b"new"
    finally:
        fresh.close()


def test_push_to_a_folder_whose_name_differs_in_case_makes_its_own(
    emulator, client, tmp_path, cache_dir
):
    client.upload(b"theirs", "Checkpoints/a.txt")
    src = make_tree(tmp_path / "src", {"a.txt": b"mine"}, ())
    fresh = make_client(emulator)
    try:
        assert push(src, "checkpoints", client=fresh, cache_dir=cache_dir).uploaded == 1
        assert drive_tree(fresh, "Checkpoints") == {"a.txt": b"theirs"}
        assert drive_tree(fresh, "checkpoints") == {"a.txt": b"mine"}
    finally:
        fresh.close()
