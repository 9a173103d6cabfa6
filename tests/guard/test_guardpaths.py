"""Which mount paths a cell names."""

from __future__ import annotations

from colab_magics.guard.paths import paths_in_source

ROOT = "/content/drive/MyDrive"


def test_literals_under_the_mount_are_found_once_in_order():
    src = (
        f'a = "{ROOT}/data/"\n'
        f"b = open('{ROOT}/ck/model.pt')\n"
        f'c = "{ROOT}/data"\n'
        'd = "/content/drive/MyDriveX/other"\n'
        'e = "/content/data"\n'
    )
    assert paths_in_source(src, ROOT) == [f"{ROOT}/data", f"{ROOT}/ck/model.pt"]


def test_wildcards_and_f_strings_name_the_fixed_folder():
    src = (
        f'glob.glob("{ROOT}/data/train/*.jpg")\n'
        f'x = f"{ROOT}/data/val/{{i}}.jpg"\n'
        f'y = f"{ROOT}/fixed.txt"\n'
        f'z = "{ROOT}/a/../b"\n'
    )
    assert paths_in_source(src, ROOT) == [
        f"{ROOT}/data/train",
        f"{ROOT}/data/val",
        f"{ROOT}/fixed.txt",
        f"{ROOT}/b",
    ]


def test_magics_and_shell_escapes_are_left_to_themselves():
    src = (
        f"%drive_sync pull {ROOT}/data /content/data\n"
        f"!ls '{ROOT}/data'\n"
        f"n = len(os.listdir('{ROOT}/other'))\n"
    )
    assert paths_in_source(src, ROOT) == [f"{ROOT}/other"]


def test_a_cell_without_the_root_is_not_parsed():
    assert paths_in_source("this is not python (", ROOT) == []
    assert paths_in_source(f"broken ( '{ROOT}/x'", ROOT) == [f"{ROOT}/x"]
