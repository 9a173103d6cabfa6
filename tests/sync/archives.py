"""Build zip and tar archives from a list of entries, hostile ones included, and snapshot trees.

An entry is ``(kind, name, value)``: ``("file", name, bytes)``, ``("dir", name, None)``,
``("symlink", name, target)``, ``("hardlink", name, target)`` (tar only: zip has none).
"""

from __future__ import annotations

import io
import os
import stat
import struct
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path

Entry = tuple[str, str, object]


def make_zip(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # a name twice is what some tests want
        for kind, name, value in entries:
            info = zipfile.ZipInfo(name + ("/" if kind == "dir" else ""))
            info.compress_type = zipfile.ZIP_DEFLATED
            if kind == "file":
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                zf.writestr(info, value)  # type: ignore[arg-type]
            elif kind == "dir":
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
                zf.writestr(info, b"")
            elif kind == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, str(value).encode())
            else:
                raise ValueError(f"zip has no {kind} entries")
    return buf.getvalue()


def make_tar(entries: list[Entry], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:  # type: ignore[call-overload]
        for kind, name, value in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == "file":
                data = bytes(value)  # type: ignore[call-overload]
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
            }[kind]
            info.linkname = "" if value is None else str(value)
            tf.addfile(info)
    return buf.getvalue()


def zip_of_zeros(name: str, size: int, mode: int) -> bytes:
    """A zip of one entry that inflates to ``size`` zero bytes, built without compressing
    ``size`` bytes: one deflate block of zeros after a full flush repeats unchanged."""
    chunk = 1 << 22
    assert size % chunk == 0
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(bytes(chunk)) + comp.flush(zlib.Z_FULL_FLUSH)
    again = comp.compress(bytes(chunk)) + comp.flush(zlib.Z_FULL_FLUSH)
    assert comp.compress(bytes(chunk)) + comp.flush(zlib.Z_FULL_FLUSH) == again
    body = first + again * (size // chunk - 1) + comp.flush(zlib.Z_FINISH)
    crc = 0
    block = bytes(chunk)
    for _ in range(size // chunk):
        crc = zlib.crc32(block, crc)
    raw = name.encode()
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(body), size, len(raw), 0
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        (3 << 8) | 20,  # made on Unix: the mode in external_attr counts
        20,
        0,
        8,
        0,
        0,
        crc,
        len(body),
        size,
        len(raw),
        0,
        0,
        0,
        0,
        mode << 16,
        0,
    )
    offset = len(local) + len(raw) + len(body)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central) + len(raw), offset, 0)
    return local + raw + body + central + raw + end


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Every path under ``root`` (not following links) with what it is: a file's bytes and
    mode, a link's target, a folder. ``skip`` (a folder under root) is left out."""
    out: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        if skip is not None and Path(folder) == skip:
            dirs[:] = []
            continue
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", st.st_mode)
            else:
                out[rel] = ("file", path.read_bytes(), st.st_mode, st.st_nlink)
    return out


def links_out(top: Path) -> list[str]:
    """Links under ``top`` whose resolution leaves ``top``."""
    real = os.path.realpath(top)
    bad = []
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                resolved = os.path.realpath(path)
                if os.path.commonpath([resolved, real]) != real:
                    bad.append(os.path.relpath(path, top))
    return bad
