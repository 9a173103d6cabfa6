"""Names that differ only in case are different files: the client tells them apart.

Drive's ``name = 'x'`` query answers every file whose name equals ``x`` without regard to case
(rclone's Drive backend, backend/drive/drive.go ``list``, re-checks the case of each result for
this reason), and the emulator answers the same way. Path resolution, replace-on-upload,
duplicate detection and folder creation must keep to the exact name.
"""

from __future__ import annotations

import warnings

import pytest

from colab_magics.drive import listing
from colab_magics.drive.errors import DriveDuplicateError
from colab_magics.drive.paths import DuplicateNameWarning
from tests.drive.conftest import make_client


@pytest.fixture
def fresh(emulator):
    """A second client with an empty id cache: it learns names only from Drive's listings."""
    c = make_client(emulator)
    yield c
    c.close()


def test_find_named_keeps_only_the_exact_name(client):
    upper = client.upload(b"upper", "d/Model.ckpt", replace=False).file
    lower = client.upload(b"lower", "d/model.ckpt", replace=False).file
    folder = client.stat("d")
    assert {f.id for f in client.query(f"'{folder.id}' in parents and name = 'model.ckpt'")} == {
        upper.id,
        lower.id,
    }  # what Drive answers ...
    assert [f.id for f in listing.find_named(client.transport, folder.id, "model.ckpt")] == [
        lower.id
    ]  # ... and what the client keeps
    assert listing.find_named(client.transport, folder.id, "MODEL.CKPT") == []


def test_upload_with_replace_never_overwrites_a_name_that_differs_in_case(client, fresh):
    upper = client.upload(b"upper", "d/Model.ckpt").file
    lower = fresh.upload(b"lower", "d/model.ckpt").file  # replace=True by default
    assert lower.id != upper.id
    assert fresh.read_bytes("d/Model.ckpt") == b"upper"
    assert fresh.read_bytes("d/model.ckpt") == b"lower"
    again = fresh.upload(b"lower v2", "d/model.ckpt").file
    assert again.id == lower.id  # the exact name is still replaced in place
    assert client.read_bytes(upper) == b"upper"


def test_resolution_takes_the_exact_name_and_reports_no_duplicate(client, fresh):
    older = client.upload(b"older, other case", "d/MODEL.pt").file
    wanted = client.upload(b"wanted", "d/model.pt").file
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateNameWarning)
        found = fresh.resolve("d/model.pt", unique=True)
    assert found.file.id == wanted.id and found.duplicates == {}
    assert fresh.stat("d/MODEL.pt").id == older.id
    assert not fresh.exists("d/Model.pt")


def test_duplicates_are_counted_by_exact_name_only(client, fresh):
    first = client.upload(b"1", "d/x.bin").file
    second = client.upload(b"2", "d/x.bin", replace=False).file
    third = client.upload(b"3", "d/X.bin").file  # replace=True: but no file is named X.bin
    assert third.id not in {first.id, second.id}
    assert [fresh.file(f.id).name for f in (first, second)] == ["x.bin", "x.bin"]
    with pytest.raises(DriveDuplicateError) as caught:
        fresh.resolve("d/x.bin", unique=True)
    assert sorted(caught.value.ids) == sorted([first.id, second.id])
    with pytest.warns(UserWarning, match="2 files on Drive are named 'd/x.bin'"):
        found = fresh.resolve("d/x.bin")
    assert found.file.id == first.id
    assert {f.id for f in found.duplicates["d/x.bin"]} == {first.id, second.id}
    assert fresh.read_bytes("d/X.bin") == b"3"


def test_folders_that_differ_in_case_are_made_and_resolved_apart(client, fresh):
    client.upload(b"a", "Data/a.txt")
    fresh.upload(b"b", "data/b.txt")
    upper, lower = fresh.stat("Data"), fresh.stat("data")
    assert upper.id != lower.id and upper.is_folder and lower.is_folder
    assert [f.name for f in fresh.listdir("Data")] == ["a.txt"]
    assert [f.name for f in fresh.listdir("data")] == ["b.txt"]
    assert fresh.ensure_folder("DATA").id not in {upper.id, lower.id}


def test_upload_many_keeps_names_that_differ_in_case_apart(client, fresh, tmp_path):
    for name, data in (("Model.ckpt", b"upper"), ("model.ckpt", b"lower")):
        (tmp_path / name).write_bytes(data)
    client.upload(b"old upper", "d/Model.ckpt")
    outcome = fresh.upload_many(
        [(tmp_path / "Model.ckpt", "d/Model.ckpt"), (tmp_path / "model.ckpt", "d/model.ckpt")]
    )
    assert outcome.ok
    assert {f.name: fresh.read_bytes(f) for f in fresh.listdir("d")} == {
        "Model.ckpt": b"upper",
        "model.ckpt": b"lower",
    }


def test_resolver_drops_what_a_lister_returns_in_another_case():
    from colab_magics.drive.model import FOLDER_MIME, DriveFile
    from colab_magics.drive.paths import Resolver

    root = DriveFile(id="root", name="My Drive", mime_type=FOLDER_MIME)
    kids = [DriveFile(id="A", name="Run", mime_type=FOLDER_MIME, parents=("root",))]

    def lister(parent, name):  # Drive's answer to name = 'run'
        return [k for k in kids if k.name.lower() == name.lower()]

    def make_folder(parent, name):
        made = DriveFile(id=f"new-{name}", name=name, mime_type=FOLDER_MIME, parents=(parent,))
        kids.append(made)
        return made

    resolver = Resolver(lister, make_folder, root)
    assert resolver.ensure_folder(["run"]).id == "new-run"
    assert resolver.resolve(["Run"]).file.id == "A"
