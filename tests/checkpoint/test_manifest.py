"""Manifest parsing: whatever bytes another writer leaves, the parser accepts only what this
package writes, or refuses it with a one-line ManifestError."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from colab_magics.checkpoint.formats import BLOB_NAMES
from colab_magics.checkpoint.manifest import MAX_STEP, Manifest, ManifestBlob, ManifestError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),  # fmt: skip
    max_leaves=12,
)
NAMES = st.sampled_from(sorted(BLOB_NAMES)) | st.sampled_from(
    ["../x", "/etc/passwd", "a/torch.pt", "..", "", "values.json\n", "TORCH.PT", "C:\\x"]
) | st.text(max_size=12)  # fmt: skip
BLOB = st.fixed_dictionaries({
    "name": NAMES,
    "size": st.integers(-5, 2**60) | JSON,
    "md5": st.just("0" * 32) | st.text(max_size=40),
    "file_id": st.just("1abcDEF_-") | st.text(max_size=10),
})  # fmt: skip
DOCUMENT = st.fixed_dictionaries({
    "format": st.just(1) | JSON,
    "run": st.just("r") | JSON,
    "step": st.integers(-(2**60), 2**60) | JSON,
    "created": st.floats() | JSON,
    "blobs": st.lists(BLOB, max_size=5) | JSON,
})  # fmt: skip


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(DOCUMENT | JSON)
def test_only_what_this_package_writes_is_accepted(document):
    try:
        manifest = Manifest.from_json(json.dumps(document).encode())
    except ManifestError as exc:
        assert str(exc) and "\n" not in str(exc) and len(str(exc)) < 400
        return
    assert 0 <= manifest.step <= MAX_STEP and isinstance(manifest.step, int)
    names = [b.name for b in manifest.blobs]
    assert set(names) <= BLOB_NAMES and len(set(names)) == len(names)
    assert all(b.size >= 0 and len(b.md5) == 32 for b in manifest.blobs)


def test_what_this_package_writes_reads_back():
    blobs = tuple(ManifestBlob(n, 10, "ab" * 16, "1Xy_-z") for n in sorted(BLOB_NAMES))
    manifest = Manifest(run="r", step=MAX_STEP, created=12.5, blobs=blobs, holder="ff" * 8)
    assert Manifest.from_json(manifest.to_json()) == manifest
