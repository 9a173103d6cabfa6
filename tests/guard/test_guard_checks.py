"""The guard's checks on their own: thresholds, quota, and a Drive view kept current cheaply."""

from __future__ import annotations

from colab_magics.drive import DriveClient, RetryPolicy
from colab_magics.drive.service import token_credentials
from colab_magics.guard import Guard, GuardError, install, uninstall
from tests.guard.conftest import a_minute_ago

FILES = {f"data/f{i}.bin": bytes([i]) * 100 for i in range(8)}


def test_a_folder_over_the_threshold_is_reported_without_stopping(mounted, capsys):
    m = mounted()
    m.upload(FILES)
    m.settle()
    guard = Guard(m.client, m.mount, threshold=5, since=a_minute_ago())
    [finding] = guard.check_paths([m.mount / "data"])
    assert (finding.kind, finding.drive_count, finding.stops) == ("large", 8, False)
    assert "threshold is 5" in finding.message and "--shard 5" in finding.message
    guard.enforce([finding])  # only printed, and only once
    guard.enforce([finding])
    assert capsys.readouterr().err.count("Drive guard: ") == 1
    assert Guard(m.client, m.mount, since=a_minute_ago()).check_paths([m.mount / "data"]) == []


def test_new_paths_and_consistent_folders_pass(mounted):
    m = mounted()
    m.upload(FILES)
    m.settle()
    guard = Guard(m.client, m.mount, since=a_minute_ago())
    cell = "\n".join(
        [
            "import os",
            f'for name in os.listdir("{m.mount}/data"): pass',
            f'save("{m.mount}/new/x.pt")  # a path the cell creates: nothing to compare yet',
        ]
    )
    assert guard.check_source(cell) == []


def test_the_drive_view_follows_the_changes_feed(mounted):
    m = mounted(lag=30)
    m.upload(FILES)
    m.settle()
    guard = Guard(m.client, m.mount, max_age=0, since=a_minute_ago())
    data = m.mount / "data"
    assert guard.check_paths([data]) == []
    before = m.client.requests
    assert guard.check_paths([data]) == []
    assert m.client.requests - before <= 2  # one changes call, no listing

    m.handle.mount.stop()  # the mount catches up only when told to (settle)
    m.upload({"data/late.bin": b"late"})  # on Drive, not yet on the mount
    [finding] = guard.check_paths([data])
    assert (finding.kind, finding.mount_count, finding.drive_count) == ("partial", 8, 9)
    m.settle()
    before = m.client.requests
    assert guard.check_paths([data]) == []
    assert m.client.requests - before <= 2


def test_quota_nearly_full_counts_the_trash(mounted):
    m = mounted()
    m.upload({"big.bin": b"b" * 9_000, "junk.bin": b"j" * 700})
    m.client.trash("junk.bin")
    m.settle()
    m.handle.settings.quota_bytes = 10_000
    guard = Guard(m.client, m.mount, since=a_minute_ago())
    assert guard.check_paths([]) == []  # nothing named: not even a quota call
    findings = guard.check_paths([m.mount / "big.bin"])
    assert [f.kind for f in findings] == ["quota"]
    assert "97% full" in findings[0].message and "--empty-trash" in findings[0].message


def test_depth_checks_subfolders_too(shell, mounted):
    m = mounted(cap=5)
    m.upload({f"ds/cats/{i}.jpg": b"c" * 10 for i in range(8)})
    m.upload({"ds/dogs/0.jpg": b"d"})
    m.settle()
    guard = Guard(m.client, m.mount, since=a_minute_ago())
    ds = m.mount / "ds"
    assert guard.check_paths([ds]) == []  # its own listing (2 folders) is complete
    [finding] = guard.check_paths([ds], depth=1)
    assert (finding.kind, finding.path, finding.drive_count) == ("partial", f"{ds}/cats", 8)
    assert "`%drive_sync pull ds/cats /content/cats`" in finding.message

    install(shell, guard)
    try:
        guard.watch(ds, depth=1)
        result = shell.run_cell("first = 1")
        assert isinstance(result.error_in_exec, GuardError) and "first" not in shell.user_ns
    finally:
        uninstall(shell)


def test_drive_unreachable_warns_and_lets_the_cell_run(shell, mounted, capsys):
    m = mounted()
    m.upload(FILES)
    m.settle()
    client = DriveClient(
        m.handle.url, token_credentials(m.handle.token), mount_root=str(m.mount), rate=None,
        policy=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01),
    )  # fmt: skip
    try:
        guard = Guard(client, m.mount, max_age=0, since=a_minute_ago())
        assert guard.check_paths([m.mount / "data"]) == []
        m.handle.settings.update({"error_rate": 1.0})
        install(shell, guard)
        result = shell.run_cell(f'first = "{m.mount}/data"')
        assert result.error_in_exec is None and shell.user_ns.pop("first")
        assert "could not check the mount against Drive" in capsys.readouterr().err
    finally:
        uninstall(shell)
        m.handle.settings.faults_off()
        client.close()


def test_a_path_deleted_through_the_mount_is_pending_not_missing(mounted):
    m = mounted(lag=30)
    m.upload({"ck/old.pt": b"old"})
    m.settle()
    guard = Guard(m.client, m.mount, since=a_minute_ago())
    old = m.mount / "ck" / "old.pt"
    assert guard.check_paths([old]) == []
    old.unlink()  # the mount uploads the delete only after its lag
    [finding] = guard.check_paths([old])
    assert (finding.kind, finding.stops) == ("pending", False)
    assert "a delete the mount has not synced yet" in finding.message


def test_a_recheck_after_ten_changes_costs_at_most_two_calls(mounted):
    m = mounted(lag=0.1)
    m.upload({f"ds/c{c}/{i}.jpg": b"x" * 10 for c in range(5) for i in range(4)})
    m.settle()
    guard = Guard(m.client, m.mount, max_age=0, since=a_minute_ago())
    ds = m.mount / "ds"
    assert guard.check_paths([ds], depth=1) == []
    m.handle.mount.stop()
    m.upload({f"ds/c{i % 5}/new{i}.jpg": b"n" for i in range(10)})
    m.settle()
    before = m.client.requests
    assert guard.check_paths([ds], depth=1) == []
    assert m.client.requests - before <= 2
