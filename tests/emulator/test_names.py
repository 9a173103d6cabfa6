"""Names in ``q`` over HTTP: Drive matches them without regard to case."""

from __future__ import annotations

from tests.emulator.drive_helpers import FOLDER


def _names(drive, q: str) -> list[str]:
    page = drive.files().list(q=q, fields="files(id,name)", orderBy="name").execute()
    return [f["name"] for f in page["files"]]


def test_name_equals_and_contains_ignore_case(drive):
    """Drive's ``name = 'x'`` also finds ``X``: rclone's Drive backend (backend/drive/drive.go,
    ``list``) drops results whose name differs from the one asked for "since the `=` operator
    is case insensitive". ``name contains`` matches the prefix of a word of the name, without
    regard to case (developers.google.com/drive/api/guides/ref-search-terms: "HelloWorld" is
    found by 'Hello', not by 'World'). Names that differ only in case are separate files."""
    folder = drive.files().create(body={"name": "run", "mimeType": FOLDER}).execute()["id"]
    for name in ("Model.ckpt", "model.ckpt", "MODEL.CKPT.bak", "other"):
        drive.files().create(body={"name": name, "parents": [folder]}).execute()
    inside = f"'{folder}' in parents and "
    assert _names(drive, inside + "name = 'model.ckpt'") == ["Model.ckpt", "model.ckpt"]
    assert _names(drive, inside + "name = 'MODEL.CKPT'") == ["Model.ckpt", "model.ckpt"]
    assert _names(drive, inside + "name != 'mOdEl.CkPt'") == ["MODEL.CKPT.bak", "other"]
    assert _names(drive, inside + "name contains 'mod'") == [
        "MODEL.CKPT.bak",
        "Model.ckpt",
        "model.ckpt",
    ]
    assert _names(drive, inside + "name contains 'ODEL'") == []  # a word's prefix only
    assert _names(drive, "name = 'RUN' and mimeType = 'application/vnd.google-apps.folder'") == [
        "run"
    ]
