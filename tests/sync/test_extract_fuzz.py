"""Random archives of files, folders, symlinks and hard links with hostile names and targets.

Whatever the sequence, extraction either finishes or stops with a one-line ``ArchiveError`` /
``SyncAborted``; nothing outside the target changes (the parent tree is compared before and
after, bytes, modes and link counts included) and no link left in the target resolves
outside it. The reference for what must be refused is Python 3.12's tarfile ``data`` filter
(https://docs.python.org/3.12/library/tarfile.html#tarfile.data_filter).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from colab_magics.sync import ArchiveError, SyncAborted, extract
from colab_magics.sync.safe_fs import STAGING_PREFIX
from tests.sync.archives import links_out, make_tar, make_zip, snapshot

SHORT = ["a", "b", "c"]
DEEP = ["m.bin", "m.bin.part", "..", "../x", "a/../x", "./b"]
TARGETS = ["..", "../victim", "a/../victim", "b/../secret/s.txt", "a/b/../..", "<abs>"]
ABSOLUTE = "<abs>"  # replaced by a path outside the target when the archive is built


@st.composite
def entries(draw: st.DrawFn) -> list[tuple[str, str, object]]:
    """Entries whose names and link targets mostly refer to names drawn before them: an
    escape that passes a check takes two or three entries that refer to each other
    (``a -> .`` then ``b -> a/..``), which independent draws almost never produce."""
    drawn: list[str] = []
    out: list[tuple[str, str, object]] = []
    for _ in range(draw(st.integers(1, 8))):
        pool = st.sampled_from(sorted({*SHORT, *drawn}))
        kind = draw(st.sampled_from(["symlink", "symlink", "symlink", "file", "hardlink", "dir"]))
        name = draw(
            st.one_of(
                st.sampled_from(SHORT),
                st.sampled_from(SHORT),
                pool.map(lambda p: p + "/x"),
                st.sampled_from(DEEP),
            )
        )
        if kind == "file":
            value: object = draw(st.binary(max_size=8))
        elif kind == "dir":
            value = None
        else:
            value = draw(
                st.one_of(
                    st.just("."),
                    pool,
                    pool.map(lambda p: p + "/.."),
                    st.tuples(pool, pool).map("/".join),
                    st.sampled_from(TARGETS),
                )
            )
        drawn.append(name.split("/")[0])
        out.append((kind, name, value))
    return out


ISSUE = [
    [("symlink", "a", "."), ("symlink", "b", "a/.."), ("file", "b/x.txt", b"x")],
    [("symlink", "a", "."), ("symlink", "m.bin.part", "a/../victim"), ("file", "m.bin", b"x")],
    [("symlink", "a", "."), ("symlink", "s", "a/../secret/s.txt"), ("hardlink", "h", "s")],
    [("symlink", "l", "x/.."), ("symlink", "x", "."), ("file", "l/x", b"x")],
]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(items=entries(), fmt=st.sampled_from(["zip", "tar"]), twice=st.booleans())
@example(items=ISSUE[0], fmt="zip", twice=False)
@example(items=ISSUE[1], fmt="tar", twice=False)
@example(items=ISSUE[2], fmt="tar", twice=False)
@example(items=ISSUE[3], fmt="zip", twice=True)
def test_nothing_outside_changes_and_no_link_points_out(tmp_path_factory, items, fmt, twice):
    box = tmp_path_factory.mktemp("fuzz")
    (box / "victim").write_bytes(b"victim")
    (box / "secret").mkdir()
    (box / "secret" / "s.txt").write_bytes(b"secret")
    out = box / "out"
    out.mkdir()
    absolute = str(box / "victim")
    chosen = [
        (kind, name, absolute if value == ABSOLUTE else value)
        for kind, name, value in items
        if not (fmt == "zip" and kind == "hardlink")
    ]
    archive = box / f"a.{'zip' if fmt == 'zip' else 'tar.gz'}"
    archive.write_bytes(make_zip(chosen) if fmt == "zip" else make_tar(chosen))
    before = snapshot(box, skip=out)
    for _ in range(2 if twice else 1):
        try:
            extract(archive, out)
        except (ArchiveError, SyncAborted) as exc:
            assert "\n" not in str(exc)
        assert snapshot(box, skip=out) == before
        assert links_out(out) == []
        assert not [n for n in os.listdir(out) if n.startswith(STAGING_PREFIX)]
