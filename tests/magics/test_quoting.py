"""Every magic takes shell-quoted arguments: Drive's everyday names hold spaces.

"Colab Notebooks" and "My Drive" are the names Drive itself gives (Colab's mount is
``/content/drive/MyDrive``, its web UI says "My Drive"; notebooks go to "Colab Notebooks").
Quotes group words and are removed, as ``shlex.split`` does
(https://docs.python.org/3/library/shlex.html#parsing-rules); IPython's own splitter keeps them.
"""

from __future__ import annotations

import builtins

from IPython.core.error import UsageError

from colab_magics.checkpoint.dir_units import UnitStore
from colab_magics.connection import current_client
from colab_magics.guard import GuardError, installed


def _ok(shell, line):
    result = shell.run_cell(line)
    assert result.error_in_exec is None, result.error_in_exec


def _names(folder: str = "") -> list[str]:
    return sorted(f.name for f in current_client().listdir(folder))


def test_connect_takes_a_quoted_mount_and_the_guard_checks_that_path(shell, mounted):
    handle, mount = mounted
    assert current_client().mount_root == str(mount)
    for i in range(8):
        current_client().upload(bytes(10), f"data/img{i}.jpg")
    handle.mount.sync_now()
    _ok(shell, "%drive_guard on")
    assert installed(shell).mount_root == str(mount)
    shell.user_ns.pop("first", None)
    error = shell.run_cell(f'first = 1\nfiles = __import__("os").listdir("{mount}/data")')
    assert isinstance(error.error_in_exec, GuardError)
    assert "first" not in shell.user_ns


def test_checkpointed_to_a_quoted_folder_creates_each_part(shell, mounted):
    shell.user_ns["losses"] = []
    _ok(shell, '%%checkpointed run --save losses --to "Colab Notebooks/ckpts"\n'
               "for step in ckpt.range(2):\n    losses.append(step)\n")  # fmt: skip
    assert "Colab Notebooks" in _names()
    assert _names("Colab Notebooks") == ["ckpts"]
    assert any(n.startswith("manifest-") for n in _names("Colab Notebooks/ckpts"))


def test_checkpointed_dir_with_a_space(shell, mounted, tmp_path):
    _ok(shell, "%%checkpointed logs --dir 'my logs'\n"
               "import pathlib; pathlib.Path('my logs').mkdir(exist_ok=True)\n"
               "pathlib.Path('my logs/a b.txt').write_text('x')\n")  # fmt: skip
    store = UnitStore(current_client(), "colab_magics/checkpoints/logs/dir", run="logs")
    assert [unit.unit for unit in store.confirmed()] == ["a b.txt"]


def test_sync_push_and_pull_quoted_paths(shell, mounted, tmp_path):
    (tmp_path / "local data").mkdir()
    (tmp_path / "local data" / "model (3).zip").write_bytes(b"zip bytes")
    _ok(shell, '%drive_sync push "local data" "Colab Notebooks/run 1"')
    assert _names("Colab Notebooks/run 1") == ["model (3).zip"]
    _ok(shell, "%drive_sync pull 'Colab Notebooks/run 1' \"back here\"")
    assert (tmp_path / "back here" / "model (3).zip").read_bytes() == b"zip bytes"
    _ok(shell, '%drive_sync pull "Colab Notebooks/run 1/model (3).zip" one\\ file.zip')
    assert (tmp_path / "one file.zip").read_bytes() == b"zip bytes"


def test_purge_a_quoted_folder(shell, mounted):
    current_client().upload(b"old", "Colab Notebooks/old run/a.txt")
    current_client().upload(b"keep", "Colab Notebooks/keep.txt")
    _ok(shell, '%drive_purge "Colab Notebooks/old run" --yes')
    assert _names("Colab Notebooks") == ["keep.txt"]


def test_status_and_flush_quoted_mount_paths(shell, mounted, capsys):
    _, mount = mounted
    (mount / "run 1").mkdir()
    (mount / "run 1" / "results (final).csv").write_text("epoch,loss\n")
    capsys.readouterr()
    _ok(shell, f'%drive_status "{mount}/run 1"')
    assert "results (final).csv" in capsys.readouterr().out
    _ok(shell, f"%drive_flush '{mount}/run 1' --push")
    assert current_client().read_bytes("run 1/results (final).csv") == b"epoch,loss\n"


def test_guard_watch_a_quoted_path(shell, mounted, capsys):
    _, mount = mounted
    (mount / "Colab Notebooks").mkdir()
    _ok(shell, f'%drive_guard watch "{mount}/Colab Notebooks"')
    assert f"watching {mount}/Colab Notebooks." in capsys.readouterr().out
    _ok(shell, f'%drive_guard unwatch "{mount}/Colab Notebooks"')


def test_an_unclosed_quote_is_one_line(shell, mounted):
    error = shell.run_cell('%drive_sync push "local data Colab').error_in_exec
    assert isinstance(error, UsageError) and "No closing quotation" in str(error)


# -- variables never steer a deletion ---------------------------------------------------------


def test_purge_does_not_expand_variables(shell, mounted, monkeypatch):
    current_client().upload(b"precious", "precious/a.txt")
    shell.user_ns["target"] = "precious"
    monkeypatch.setattr(builtins, "input", lambda prompt: "y")
    for line in ("%drive_purge $target --yes", "%drive_purge {target} --yes"):
        error = shell.run_cell(line).error_in_exec
        assert isinstance(error, UsageError)
        assert "target" in str(error)  # the path as written was looked for, and is not there
    assert current_client().exists("precious/a.txt")


def test_a_variable_cannot_empty_the_trash(shell, mounted):
    current_client().upload(b"old", "old.bin")
    current_client().trash("old.bin")
    shell.user_ns["flags"] = "--empty-trash"
    error = shell.run_cell("%drive_quota $flags").error_in_exec
    assert isinstance(error, UsageError) and "unrecognized arguments: $flags" in str(error)
    assert current_client().quota().usage_in_trash == 3


def test_push_with_delete_takes_the_line_as_written(shell, mounted, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a")
    current_client().upload(b"someone else's", "shared/theirs.txt")
    shell.user_ns["dest"] = "shared"
    _ok(shell, "%drive_sync push data $dest --delete")
    assert current_client().exists("shared/theirs.txt")
    assert _names("$dest") == ["a.txt"]


def test_push_without_delete_still_expands_variables(shell, mounted, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a")
    shell.user_ns["dest"] = "runs/7"
    _ok(shell, "%drive_sync push data $dest")
    assert _names("runs/7") == ["a.txt"]


def test_a_variable_cannot_bring_in_delete(shell, mounted, tmp_path):
    (tmp_path / "data").mkdir()
    current_client().upload(b"keep", "d/keep.txt")
    shell.user_ns["flags"] = "--delete"
    error = shell.run_cell("%drive_sync push data d $flags").error_in_exec
    assert isinstance(error, UsageError) and "--delete" in str(error)
    assert current_client().exists("d/keep.txt")
