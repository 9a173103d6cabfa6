"""Path parsing, the duplicate rule, the id cache and the progress model, without a server."""

from __future__ import annotations

import threading

import pytest

from colab_magics.drive.errors import DriveDuplicateError, DriveNotFound
from colab_magics.drive.model import FOLDER_MIME, DriveFile
from colab_magics.drive.paths import (
    DuplicateNameWarning,
    IdCache,
    Resolver,
    parse_path,
    pick,
    query_literal,
)
from colab_magics.progress import NO_PROGRESS, TransferProgress


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("checkpoints/run1/x.pt", ("checkpoints", "run1", "x.pt")),
        ("drive:checkpoints/run1/x.pt", ("checkpoints", "run1", "x.pt")),
        ("drive:/checkpoints//x.pt", ("checkpoints", "x.pt")),
        ("/content/drive/MyDrive/checkpoints/x.pt", ("checkpoints", "x.pt")),
        ("/content/drive/MyDrive", ()),
        ("/mnt/gd/a/b", ("a", "b")),
        ("./a/./b/", ("a", "b")),
        ("", ()),
        ("drive:", ()),
    ],
)
def test_three_spellings_of_a_path(text, parts):
    assert parse_path(text, mount_root="/mnt/gd/") == parts


def test_local_paths_and_dotdot_are_refused():
    with pytest.raises(ValueError, match="local path"):
        parse_path("/tmp/x.pt", mount_root="/mnt/gd")
    with pytest.raises(ValueError, match=r"\.\."):
        parse_path("a/../b")
    with pytest.raises(ValueError):
        parse_path("/mnt/gdx/a", mount_root="/mnt/gd")


def test_query_literal_escapes_quotes_and_backslashes():
    assert query_literal("it's a\\b") == "'it\\'s a\\\\b'"


def f(id_, name, t, folder=False, parents=("p",)):
    return DriveFile(
        id=id_, name=name, created_time=t, parents=parents,
        mime_type=FOLDER_MIME if folder else "application/octet-stream",
    )  # fmt: skip


def test_pick_is_a_folder_first_then_oldest_then_smallest_id():
    a = f("b2", "x", "2026-01-01T00:00:00.000Z")
    b = f("a1", "x", "2026-01-01T00:00:00.000Z")
    c = f("c0", "x", "2025-01-01T00:00:00.000Z")
    d = f("d0", "x", "2027-01-01T00:00:00.000Z", folder=True)
    assert pick([a, b]) is b
    assert pick([a, b, c]) is c
    assert pick([a, b, c, d]) is d  # a folder wins over older files of its name
    e = f("e0", "x", "2024-01-01T00:00:00.000Z", folder=True)
    assert pick([a, d, e]) is e


class Tree:
    """An in-memory folder tree answering the resolver's two questions."""

    def __init__(self) -> None:
        self.files: list[DriveFile] = []
        self.lists = 0
        self.n = 0

    def add(self, parent: str, name: str, folder: bool = False, t: str = "") -> DriveFile:
        self.n += 1
        file = f(
            f"id{self.n:03d}", name, t or f"2026-01-01T00:00:{self.n:02d}.000Z", folder, (parent,)
        )
        self.files.append(file)
        return file

    def lister(self, parent: str, name: str) -> list[DriveFile]:
        self.lists += 1
        return [x for x in self.files if parent in x.parents and x.name == name]

    def make_folder(self, parent: str, name: str) -> DriveFile:
        return self.add(parent, name, folder=True)


ROOT = DriveFile(id="root", name="My Drive", mime_type=FOLDER_MIME)


def test_resolver_walks_and_caches():
    tree = Tree()
    ck = tree.add("root", "ck", folder=True)
    x = tree.add(ck.id, "x.pt")
    r = Resolver(tree.lister, tree.make_folder, ROOT)
    assert r.resolve(("ck", "x.pt")).file == x
    lists = tree.lists
    assert r.resolve(("ck", "x.pt")).file == x
    assert tree.lists == lists  # served from the cache


def test_resolver_names_the_missing_component():
    tree = Tree()
    tree.add("root", "ck", folder=True)
    r = Resolver(tree.lister, tree.make_folder, ROOT)
    with pytest.raises(DriveNotFound, match="ck/run1"):
        r.resolve(("ck", "run1", "x.pt"))


def test_duplicates_follow_the_rule_and_are_reported():
    tree = Tree()
    first = tree.add("root", "model.zip")
    second = tree.add("root", "model.zip")
    r = Resolver(tree.lister, tree.make_folder, ROOT)
    with pytest.warns(DuplicateNameWarning, match=second.id):
        res = r.resolve(("model.zip",))
    assert res.file == first
    assert {x.id for x in res.duplicates["model.zip"]} == {first.id, second.id}
    r.cache.clear()
    with pytest.raises(DriveDuplicateError) as info:
        r.resolve(("model.zip",), unique=True)
    assert info.value.ids == sorted([first.id, second.id])


def test_ensure_folder_creates_once_even_from_many_threads():
    tree = Tree()
    r = Resolver(tree.lister, tree.make_folder, ROOT)
    threads = [threading.Thread(target=r.ensure_folder, args=(("a", "b", "c"),)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(x.name for x in tree.files) == ["a", "b", "c"]


def test_id_cache_follows_changes():
    cache = IdCache()
    a = f("A", "x", "t", parents=("p",))
    cache.put("p", a)
    cache.apply_change("A", a)  # our own creation echoed back: kept
    assert cache.get("p", "x") == a
    cache.apply_change("A", DriveFile(id="A", name="y", parents=("p",)))  # renamed
    assert cache.get("p", "x") is None
    cache.put("p", a)
    cache.apply_change("B", f("B", "x", "t0", parents=("p",)))  # another file of that name
    assert cache.get("p", "x") is None
    cache.put("p", a)
    cache.apply_change("A", None)  # removed
    assert len(cache) == 0


def test_id_cache_finds_entries_by_id_after_names_change_hands():
    # Changes find their entries through an index by file id: a name handed to another file
    # leaves the first file's index, and a file cached under two names is followed in both.
    cache = IdCache()
    a, b = f("A", "x", "t", parents=("p", "q")), f("B", "x", "t1")
    cache.put("p", a)
    cache.put("q", a)
    cache.put("p", b)  # (p, x) is B's now
    cache.forget_id("A")
    assert cache.get("p", "x") == b and cache.get("q", "x") is None
    cache.put("p", a)
    cache.put("q", a)
    moved = f("A", "x", "t", parents=("q",))
    cache.apply_change("A", moved)  # moved out of p
    assert cache.get("p", "x") is None and cache.get("q", "x") == moved
    cache.apply_change("A", None)
    assert len(cache) == 0


class Sink:
    def __init__(self) -> None:
        self.updates: list[dict] = []

    def update(self, **fields) -> None:
        self.updates.append(fields)


def test_progress_counts_and_forwards():
    now = [0.0]
    sink = Sink()
    p = TransferProgress(sink, min_interval=0, clock=lambda: now[0])
    p.set_files(2)
    p.set_size(1000)
    now[0] = 1.0
    p.relative_update(400)
    now[0] = 2.0
    p.relative_update(400)
    p.retry(RuntimeError("x"), 0.1)
    p.file_done("a")
    p.error(RuntimeError("boom"), "b")
    snap = p.snapshot()
    assert snap["bytes_done"] == 800 and snap["bytes_total"] == 1000
    assert snap["files_done"] == 1 and snap["files_total"] == 2
    assert snap["retries"] == 1 and snap["errors"] == 1 and "boom" in snap["error"]
    assert snap["rate"] == pytest.approx(400.0)
    assert sink.updates[-1] == snap


def test_progress_throttles_byte_updates_but_not_events():
    now = [0.0]
    sink = Sink()
    p = TransferProgress(sink, min_interval=1.0, clock=lambda: now[0])
    p.relative_update(1)
    p.relative_update(1)
    assert len(sink.updates) == 1
    p.file_done()
    assert len(sink.updates) == 2


def test_no_progress_accepts_everything():
    NO_PROGRESS.set_size(1)
    NO_PROGRESS.relative_update(1)
    NO_PROGRESS.set_files(1)
    NO_PROGRESS.file_done("x")
    NO_PROGRESS.retry(RuntimeError(), 0)
    NO_PROGRESS.error(RuntimeError(), "x")
