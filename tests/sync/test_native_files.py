"""Google-native files (Docs, Sheets) in a synced folder: never downloaded, never replaced."""

from __future__ import annotations

import pytest

from colab_magics.drive import DriveNotDownloadable
from colab_magics.sync import pull, push
from colab_magics.sync.remote import list_tree
from tests.sync.conftest import make_tree, read_tree

DOC = "application/vnd.google-apps.document"


def _doc(client, folder_id: str, name: str) -> str:
    body = {"name": name, "mimeType": DOC, "parents": [folder_id]}
    return client.transport.files.create(body=body, fields="id").execute()["id"]


def test_download_of_a_doc_names_it_and_says_it_needs_export(client, tmp_path):
    """alt=media on a Docs file is 403 fileNotDownloadable (Drive's "Download and export
    files" guide); the client says which file and what to do, before asking."""
    folder = client.ensure_folder("docs")
    _doc(client, folder.id, "Notes")
    listed = client.listdir("docs")
    assert [(f.name, f.mime_type, f.is_native, f.size, f.md5) for f in listed] == [
        ("Notes", DOC, True, None, None)
    ]
    with pytest.raises(DriveNotDownloadable, match="'Notes'.*export"):
        client.download("docs/Notes", tmp_path / "out" / "notes.txt")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_the_server_s_403_maps_to_the_same_typed_error(client):
    folder = client.ensure_folder("docs")
    doc = _doc(client, folder.id, "Raw")
    with pytest.raises(DriveNotDownloadable, match="export"):
        client.transport.execute(lambda: client.transport.files.get_media(fileId=doc))


def test_pull_skips_docs_and_push_never_touches_them(client, tmp_path, cache_dir):
    src = make_tree(tmp_path / "src", {"a.txt": b"alpha", "sub/b.txt": b"beta"}, ())
    push(src, "ds", client=client, cache_dir=cache_dir)
    ds = client.stat_folder("ds")
    doc = _doc(client, ds.id, "README")
    tree = list_tree(client, ds)
    assert sorted(tree.files) == ["a.txt", "sub/b.txt"] and list(tree.native) == ["README"]
    report = pull("ds", tmp_path / "back", client=client, cache_dir=cache_dir)
    assert report.ok and report.downloaded == 2
    assert report.native == ["README"]
    assert "left out 1 Google Docs/Sheets/shortcut file" in report.summary()
    assert "first: README" in report.summary()
    assert read_tree(tmp_path / "back") == read_tree(src)
    # A push with delete=True leaves the Doc alone: it is not one of the files it manages.
    push(src, "ds", client=client, cache_dir=cache_dir, delete=True)
    assert client.file(doc).name == "README"
