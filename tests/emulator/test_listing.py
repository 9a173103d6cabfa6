"""files.list: paging, page size, partial responses, queries, order and the listing lag."""

from __future__ import annotations

import json
import time

import pytest
from googleapiclient.errors import HttpError

from colab_magics.emulator.records import NewFile
from tests.emulator.drive_helpers import FOLDER, error_reason, raw


def _make(drive, names, parent="root"):
    return [
        drive.files().create(body={"name": n, "parents": [parent]}, fields="id,name").execute()
        for n in names
    ]


def test_paging_through_250_files_with_page_size_100(drive):
    folder = drive.files().create(body={"name": "many", "mimeType": FOLDER}).execute()
    made = _make(drive, [f"f{i:03d}" for i in range(250)], folder["id"])
    seen, sizes, token = [], [], None
    while True:
        page = (
            drive.files()
            .list(
                q=f"'{folder['id']}' in parents",
                pageSize=100,
                pageToken=token,
                orderBy="name",
                fields="nextPageToken,files(id,name)",
            )
            .execute()
        )
        sizes.append(len(page["files"]))
        seen += page["files"]
        token = page.get("nextPageToken")
        if not token:
            break
    assert sizes == [100, 100, 50]
    assert seen == sorted(made, key=lambda f: f["name"])


def test_default_page_size_is_100_and_5000_is_capped_at_1000(emulator, drive):
    for i in range(1005):
        emulator.app.store.create(NewFile(name=f"n{i}"), None)
    page = drive.files().list(fields="nextPageToken,files(id)").execute()
    assert len(page["files"]) == 100 and page["nextPageToken"]
    page = drive.files().list(pageSize=5000, fields="nextPageToken,files(id)").execute()
    assert len(page["files"]) == 1000
    rest = (
        drive.files()
        .list(pageSize=5000, pageToken=page["nextPageToken"], fields="nextPageToken,files(id)")
        .execute()
    )
    assert len(rest["files"]) == 5 and "nextPageToken" not in rest
    assert not {f["id"] for f in page["files"]} & {f["id"] for f in rest["files"]}


def test_page_size_zero_and_a_forged_page_token_are_400(drive):
    with pytest.raises(HttpError) as e:
        drive.files().list(pageSize=0).execute()
    assert e.value.resp.status == 400
    with pytest.raises(HttpError) as e:
        drive.files().list(pageToken="not-a-token").execute()
    assert e.value.resp.status == 400


def test_default_list_shape(drive):
    _make(drive, ["a"])
    page = drive.files().list().execute()
    assert page["kind"] == "drive#fileList" and page["incompleteSearch"] is False
    assert set(page["files"][0]) == {"kind", "id", "name", "mimeType"}


def test_partial_response_with_nested_selection(drive):
    _make(drive, ["x", "y"])
    page = drive.files().list(fields="files(id,name)", orderBy="name").execute()
    assert list(page) == ["files"]
    assert [set(f) for f in page["files"]] == [{"id", "name"}, {"id", "name"}]
    assert [f["name"] for f in page["files"]] == ["x", "y"]


def test_duplicate_names_in_one_folder_are_both_listed(drive):
    a, b = _make(drive, ["model (3).zip", "model (3).zip"])
    page = (
        drive.files()
        .list(q="name = 'model (3).zip' and trashed = false", fields="files(id)")
        .execute()
    )
    assert sorted(f["id"] for f in page["files"]) == sorted([a["id"], b["id"]])


def test_queries_filter_and_order(drive):
    folder = drive.files().create(body={"name": "dir", "mimeType": FOLDER}).execute()
    drive.files().create(
        body={"name": "keep", "parents": [folder["id"]], "appProperties": {"role": "manifest"}}
    ).execute()
    gone = drive.files().create(body={"name": "gone", "parents": [folder["id"]]}).execute()
    drive.files().update(fileId=gone["id"], body={"trashed": True}).execute()

    def names(q, order="name"):
        page = drive.files().list(q=q, orderBy=order, fields="files(name)").execute()
        return [f["name"] for f in page["files"]]

    inside = f"'{folder['id']}' in parents"
    assert names(inside) == ["gone", "keep"]
    assert names(f"{inside} and trashed = false") == ["keep"]
    assert names("appProperties has { key='role' and value='manifest' }") == ["keep"]
    assert names(f"mimeType = '{FOLDER}'") == ["dir"]
    assert names(inside, order="name desc") == ["keep", "gone"]
    assert names("'root' in parents and not mimeType = 'application/octet-stream'") == ["dir"]


def test_malformed_query_is_400(emulator, drive):
    with pytest.raises(HttpError) as e:
        drive.files().list(q="name = 'unterminated").execute()
    assert e.value.resp.status == 400
    status, _, body = raw(emulator, "GET", "/drive/v3/files?q=name%20%3D%3D%3D%20x")
    assert status == 400 and error_reason(body) == "invalid"
    with pytest.raises(HttpError) as e:
        drive.files().list(orderBy="size").execute()
    assert e.value.resp.status == 400


def test_listing_lag_hides_new_and_renamed_files_but_get_sees_them(emulator, drive):
    emulator.settings.update({"listing_lag": 0.6})
    f = drive.files().create(body={"name": "late"}).execute()
    assert drive.files().list(q="name = 'late'").execute()["files"] == []
    assert drive.files().get(fileId=f["id"], fields="name").execute() == {"name": "late"}
    time.sleep(0.7)
    assert [x["id"] for x in drive.files().list(q="name = 'late'").execute()["files"]] == [f["id"]]
    drive.files().update(fileId=f["id"], body={"name": "renamed"}).execute()
    assert drive.files().list(q="name = 'renamed'").execute()["files"] == []
    time.sleep(0.7)
    assert len(drive.files().list(q="name = 'renamed'").execute()["files"]) == 1


def test_root_is_not_listed(drive):
    root_id = drive.files().get(fileId="root", fields="id").execute()["id"]
    ids = [f["id"] for f in drive.files().list(pageSize=1000).execute()["files"]]
    assert root_id not in ids


def _pages(drive, **kw):
    """Every page of one listing, following ``nextPageToken`` whatever each page holds."""
    pages, token = [], None
    while True:
        page = drive.files().list(pageToken=token, fields="nextPageToken,files(id)", **kw).execute()
        pages.append(page)
        token = page.get("nextPageToken")
        if not token:
            return pages


def test_short_pages_still_carry_a_next_page_token(emulator, drive):
    """files.list: "the number of files returned ... may be less than pageSize even when more
    remain; callers must continue while nextPageToken is set" (Drive v3 reference, files.list
    ``pageSize`` and ``nextPageToken``; rclone's drive backend loops on the token alone)."""
    for i in range(40):
        emulator.app.store.create(NewFile(name=f"s{i:02d}"), None)
    emulator.settings.update({"short_page_rate": 0.7, "seed": 12})
    pages = _pages(drive, pageSize=10, orderBy="name")
    ids = [f["id"] for page in pages for f in page["files"]]
    assert len(ids) == 40 and len(set(ids)) == 40
    short = [p for p in pages if len(p["files"]) < 10 and "nextPageToken" in p]
    assert short, [len(p["files"]) for p in pages]
    emulator.settings.faults_off()
    assert [len(p["files"]) for p in _pages(drive, pageSize=10, orderBy="name")] == [10] * 4


def test_page_tokens_are_opaque(emulator, drive):
    """A token is not an offset a client can read or forge: any change to it is a 400."""
    _make(drive, [f"o{i}" for i in range(5)])
    token = drive.files().list(pageSize=2, fields="nextPageToken").execute()["nextPageToken"]
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    status, _, body = raw(emulator, "GET", f"/drive/v3/files?pageSize=2&pageToken={forged}")
    assert status == 400 and error_reason(body) == "invalid"
    assert json.loads(body)["error"]["errors"][0]["location"] == "pageToken"
    # Another query (or order) cannot use it either.
    status, _, _ = raw(
        emulator, "GET", f"/drive/v3/files?pageSize=2&orderBy=name&pageToken={token}"
    )
    assert status == 400


def test_a_page_token_dies_when_the_listing_changes_shape_before_it(emulator, drive):
    """Drive's tokens are opaque cursors with no promise past a change; the emulator takes the
    stricter reading: once a file is added or removed ahead of the cursor, the token is a 400
    (``invalid``, location ``pageToken``) and the client must list again."""
    made = _make(drive, [f"c{i}" for i in range(6)])
    first = (
        drive.files().list(pageSize=3, orderBy="name", fields="nextPageToken,files(id)").execute()
    )
    token = first["nextPageToken"]
    # A file sorting after the cursor does not move it: the token still works.
    _make(drive, ["z-last"])
    rest = drive.files().list(pageSize=10, orderBy="name", pageToken=token, fields="files(name)")
    assert [f["name"] for f in rest.execute()["files"]] == ["c3", "c4", "c5", "z-last"]
    # One sorting before it does.
    _make(drive, ["a-first"])
    with pytest.raises(HttpError) as e:
        drive.files().list(pageSize=3, orderBy="name", pageToken=token).execute()
    assert e.value.resp.status == 400 and error_reason(e.value.content) == "invalid"
    # So does a removal ahead of the cursor.
    again = drive.files().list(pageSize=3, orderBy="name", fields="nextPageToken").execute()
    drive.files().delete(fileId=made[0]["id"]).execute()
    with pytest.raises(HttpError):
        drive.files().list(pageSize=3, orderBy="name", pageToken=again["nextPageToken"]).execute()


def test_a_query_past_2048_characters_goes_as_post_with_method_override(emulator, drive):
    """google-api-python-client turns a GET whose URL passes 2048 characters
    (``googleapiclient/http.py``, ``MAX_URI_LENGTH``) into a POST with
    ``X-HTTP-Method-Override: GET`` and the query in a form body; it is still a files.list."""
    wanted = _make(drive, ["needle-1", "needle-2"])
    _make(drive, ["hay"])
    names = [f"needle-{i}" for i in range(1, 120)]
    q = " or ".join(f"name = '{n}'" for n in names)
    assert len(q) > 2048
    seen = []
    emulator.faults.on_request(lambda event: seen.append((event.method, event.headers)))
    try:
        page = drive.files().list(q=q, fields="files(id,name)", orderBy="name").execute()
    finally:
        emulator.faults.on_request(None)
    assert page["files"] == wanted
    method, headers = seen[-1]
    assert method == "POST" and headers["x-http-method-override"] == "GET"
    # Nothing was created by it.
    assert len(drive.files().list(fields="files(id)").execute()["files"]) == 3


def test_method_override_by_raw_http(emulator):
    """The form body's parameters join the URL's; an override the emulator cannot honour is a
    400 rather than a silent create."""
    status, _, body = raw(
        emulator,
        "POST",
        "/drive/v3/files?fields=kind",
        body=b"pageSize=5&q=name+%3D+%27none%27",
        headers={
            "X-HTTP-Method-Override": "GET",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert status == 200 and json.loads(body) == {"kind": "drive#fileList"}
    status, _, _ = raw(
        emulator, "POST", "/drive/v3/files", body=b"{}", headers={"X-HTTP-Method-Override": "TRACE"}
    )
    assert status == 400


def test_a_listing_of_only_short_pages_still_ends(emulator, drive):
    """Even with every page cut short (some empty), a listing reaches its end: never two empty
    pages in a row."""
    _make(drive, [f"e{i}" for i in range(5)])
    emulator.settings.update({"short_page_rate": 1.0, "seed": 5})
    pages = _pages(drive, pageSize=1000)
    assert len({f["id"] for p in pages for f in p["files"]}) == 5
    assert len([f for p in pages for f in p["files"]]) == 5 and len(pages) > 1
    assert all(p["files"] or q["files"] for p, q in zip(pages, pages[1:], strict=False))


def test_spaces_take_a_comma_separated_list(emulator, drive):
    """files.list ``spaces``: "A comma-separated list of spaces to query ... 'drive' and
    'appDataFolder'" (Drive v3 reference)."""
    made = _make(drive, ["sp"])
    both = drive.files().list(spaces="drive,appDataFolder", fields="files(id)").execute()
    assert both["files"] == [{"id": made[0]["id"]}]
    assert drive.files().list(spaces="appDataFolder").execute()["files"] == []
    status, _, body = raw(emulator, "GET", "/drive/v3/files?spaces=photos,elsewhere")
    assert status == 400 and error_reason(body) == "invalid"
