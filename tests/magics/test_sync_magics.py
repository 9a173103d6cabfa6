"""%drive_sync, %drive_quota and %drive_purge in a real shell, against the emulator."""

from __future__ import annotations

import builtins

import pytest
from IPython.core.error import UsageError

from colab_magics.connection import use_client
from colab_magics.drive import connect


@pytest.fixture
def client(emulator, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = connect(url=emulator.url, token=emulator.token)
    previous = use_client(c)
    yield c
    use_client(previous)
    c.close()


def _tree(root, files=5):
    root.mkdir()
    (root / "sub").mkdir()
    for i in range(files):
        (root / "sub" / f"f{i}.txt").write_text(f"content {i}" * 100)
    (root / "empty.bin").write_bytes(b"")
    return root


def _err(shell, line):
    return shell.run_cell(line).error_in_exec


def test_push_then_pull_round_trip_and_a_second_push_sends_nothing(shell, client, tmp_path, capsys):
    _tree(tmp_path / "data")
    assert _err(shell, "%drive_sync push data datasets/d1") is None
    assert "uploaded 6" in capsys.readouterr().out
    assert _err(shell, "%drive_sync push data datasets/d1") is None
    out = capsys.readouterr().out
    assert "skipped 6" in out and "uploaded" not in out
    assert _err(shell, "%drive_sync pull datasets/d1 restored") is None
    assert (tmp_path / "restored" / "sub" / "f3.txt").read_text() == "content 3" * 100
    assert (tmp_path / "restored" / "empty.bin").read_bytes() == b""


def test_dry_run_prints_the_plan_and_changes_nothing(shell, client, tmp_path, capsys):
    _tree(tmp_path / "data", files=2)
    assert _err(shell, "%drive_sync push data datasets/dry --dry-run") is None
    out = capsys.readouterr().out
    assert "sub/f1.txt" in out and out.strip().splitlines()[-1].startswith("would: upload")
    assert not client.exists("datasets/dry")


def test_watch_pushes_changes_until_stop(shell, client, tmp_path, capsys):
    _tree(tmp_path / "logs", files=1)
    assert _err(shell, "%drive_sync push logs runs/logs --watch") is None
    (tmp_path / "logs" / "new.txt").write_text("later")
    assert _err(shell, "%drive_sync stop") is None
    assert "stopped" in capsys.readouterr().out
    assert client.read_bytes(client.stat("runs/logs/new.txt")) == b"later"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%drive_sync push onlyone", "takes two paths: LOCAL DRIVE_PATH"),
        ("%drive_sync pull a b --delete", "--delete does not go with pull"),
        ("%drive_sync push a b --extract", "--extract does not go with push"),
        ("%drive_sync sideways a b", "invalid choice: 'sideways'"),
        ("%drive_sync push a b --jobs 0", "--jobs and --shard need a number of at least 1"),
        ("%drive_sync push /no/such/dir x", "/no/such/dir"),
        ("%drive_sync pull no/such/folder here", "no/such/folder"),
        ("%drive_purge no/such/thing --yes", "no/such/thing"),
        ("%drive_sync push a b --max-size 1G", "--max-size does not go with push"),
        ("%drive_sync pull a b --max-size lots", "--max-size: 'lots' is not a size"),
        ("%drive_sync pull a b --max-size=-5G", "--max-size: '-5G' is not a size"),
    ],
)
def test_bad_input_is_one_clear_error(shell, client, line, message):
    error = _err(shell, line)
    assert isinstance(error, UsageError) and message in str(error)


def test_purge_frees_space_at_once_and_quota_shows_the_trash(shell, client, tmp_path, capsys):
    _tree(tmp_path / "data", files=250)
    assert _err(shell, "%drive_sync push data big") is None
    used = client.quota().usage
    assert used > 0
    client.upload(b"x" * 1000, "old.bin")
    client.trash("old.bin")
    capsys.readouterr()
    assert _err(shell, "%drive_quota") is None
    assert "1.0 KB of it is in the trash" in capsys.readouterr().out

    assert _err(shell, "%drive_purge big --yes") is None
    assert "Deleted 251 files and 2 folders permanently" in capsys.readouterr().out
    assert not client.exists("big")
    assert client.quota().usage == 1000  # only the trashed file is left

    assert _err(shell, "%drive_quota --empty-trash") is None
    assert "1.0 KB freed" in capsys.readouterr().out
    assert client.quota().usage == 0


def test_purge_asks_first(shell, client, tmp_path, monkeypatch, capsys):
    client.upload(b"keep me", "precious/a.txt")
    monkeypatch.setattr(builtins, "input", lambda prompt: "n")
    assert _err(shell, "%drive_purge precious") is None
    assert "Nothing deleted." in capsys.readouterr().out
    assert client.exists("precious/a.txt")
