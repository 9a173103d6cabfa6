"""Listing, tree walk and index, delete/trash/quota, errors and the id cache, on the emulator."""

from __future__ import annotations

import time

import pytest

from colab_magics.drive import (
    DriveAuthError,
    DriveNotFound,
    DriveQuotaError,
    TransferProgress,
    listing,
)
from tests.drive.conftest import UNIT, make_client, payload


def test_listing_pages_through_everything(client):
    folder = client.ensure_folder("paged")
    for i in range(23):
        client.upload(b"%d" % i, f"paged/{i:02d}")
    files = listing.list_children(client.transport, folder.id, page_size=5)
    assert sorted(f.name for f in files) == [f"{i:02d}" for i in range(23)]


def test_walk_and_index_follow_changes(client):
    for path in ["t/a.bin", "t/sub/b.bin", "t/sub/deeper/c.bin", "t/other/d.bin", "elsewhere.bin"]:
        client.upload(path.encode(), path)
    walked = {p for p, _ in client.walk("t")}
    assert walked == {
        "a.bin", "sub", "sub/b.bin", "sub/deeper", "sub/deeper/c.bin", "other", "other/d.bin",
    }  # fmt: skip
    index = client.index("t")
    entries = index.entries()
    assert entries["sub/b.bin"].size == len(b"t/sub/b.bin")
    assert entries["sub"].is_folder and entries["a.bin"].md5
    # Changes: a new file, a deleted file, a renamed folder, a file moved out.
    client.upload(b"new", "t/sub/new.bin")
    client.delete("t/a.bin")
    sub = client.stat("t/sub")
    client.service.files().update(fileId=sub.id, body={"name": "renamed"}).execute(
        http=client.transport.http
    )
    d = client.stat("t/other/d.bin")
    other, root = client.stat("t/other"), client.resolver.root
    client.service.files().update(fileId=d.id, addParents=root.id, removeParents=other.id).execute(
        http=client.transport.http
    )
    assert index.refresh() >= 4
    assert set(index.entries()) == {
        "renamed", "renamed/b.bin", "renamed/new.bin", "renamed/deeper",
        "renamed/deeper/c.bin", "other",
    }  # fmt: skip


def test_batched_delete_trash_and_quota(client):
    ids = [client.upload(b"x" * 10, f"del/{i}", replace=False).file.id for i in range(130)]
    before = client.quota()
    assert before.usage >= 1300
    progress = TransferProgress()
    requests = client.requests
    client.delete_ids(ids + ids[:5], progress=progress)  # repeats are harmless
    assert client.requests - requests == 2  # 130 deletes in two batch requests
    assert progress.files_done == 130
    assert client.listdir("del") == []
    assert client.quota().usage == before.usage - 1300
    client.upload(payload(UNIT), "trashme.bin")
    client.trash("trashme.bin")
    q = client.quota()
    assert q.usage_in_trash == UNIT and not client.exists("trashme.bin")
    client.empty_trash()
    assert client.quota().usage_in_trash == 0


def test_quota_exceeded_leaves_nothing_behind(emulator, tmp_path):
    client = make_client(emulator)
    emulator.settings.update({"quota_bytes": 100_000})
    for size in (150_000, 3 * UNIT):  # one multipart, one resumable
        with pytest.raises(DriveQuotaError, match="full"):
            client.upload(payload(size), "q/x.bin")
    assert client.listdir("q") == []


def test_wrong_token_is_an_auth_error(emulator):
    bad = make_client(emulator, token="not-the-token")
    with pytest.raises(DriveAuthError):
        bad.upload(b"x", "a.bin")
    with pytest.raises(DriveAuthError):
        bad.quota()


def test_folders_made_under_listing_lag_are_not_duplicated(emulator):
    client = make_client(emulator)
    emulator.settings.update({"listing_lag": 1.0})
    a = client.ensure_folder("lag/a")
    assert client.ensure_folder("lag/a").id == a.id
    client.upload(b"1", "lag/a/x")
    client.upload(b"2", "lag/a/x")  # replaced in place, found through the cache
    assert client.read_bytes("lag/a/x") == b"2"
    time.sleep(1.1)  # until the listing shows everything made above
    assert [f.name for f in client.listdir("lag")] == ["a"]
    assert len(client.listdir("lag/a")) == 1


def test_cache_forgets_deleted_files(client):
    client.upload(b"1", "cache/x")
    other = make_client_like(client)
    other.delete("cache/x")
    client.cache_ttl = 0
    with pytest.raises(DriveNotFound):
        client.stat("cache/x")


def make_client_like(client):
    from colab_magics.drive.client import DriveClient

    return DriveClient(client.root_url, client.credentials, rate=None)


def test_the_pacer_spaces_requests(emulator):
    slept: list[float] = []
    client = make_client(emulator, rate=10, burst=1, sleep=slept.append)
    for _ in range(5):
        client.quota()
    # After the one-request burst each request waits for its token. The injected sleep does
    # not pass time, so the waits add up: about 0.1 s more per request at 10/s.
    assert len(slept) == 4
    assert [round(slept[i + 1] - slept[i], 1) for i in range(3)] == [0.1, 0.1, 0.1]


def test_a_broken_changes_feed_empties_the_cache_instead_of_failing(client):
    up = client.upload(b"1", "feed/x")
    client._changes_token = "not-a-token"  # as after Drive expired it
    client.cache_ttl = 0
    assert client.stat("feed/x").id == up.file.id
    assert client._changes_token is not None  # a fresh token was taken


def test_app_properties_round_trip_and_query(client):
    up = client.upload(b"m", "ck/manifest.json", app_properties={"run": "r1", "step": "10"})
    assert up.file.app_properties == {"run": "r1", "step": "10"}
    client.upload(b"o", "ck/other.json", app_properties={"run": "r2"})
    found = client.query("appProperties has { key='run' and value='r1' } and trashed = false")
    assert [f.id for f in found] == [up.file.id]
