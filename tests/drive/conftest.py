"""A DriveClient on the emulator, tuned so small files exercise every code path quickly."""

from __future__ import annotations

import hashlib
import os

import pytest

from colab_magics.drive.client import DriveClient
from colab_magics.drive.retry import RetryPolicy
from colab_magics.drive.service import token_credentials

KIB = 1024
UNIT = 256 * KIB

# Short backoffs keep fault tests fast; the rule (full jitter, Retry-After) is the same.
FAST_RETRY = RetryPolicy(max_attempts=30, base_delay=0.01, max_delay=0.2)


def make_client(handle, *, token: str | None = None, **options) -> DriveClient:
    options = {
        "rate": None,
        "policy": FAST_RETRY,
        "chunk_size": UNIT,
        "multipart_limit": UNIT,
        "download_chunk_size": UNIT,
        "workers": 4,
        "timeout": 30,
        **options,
    }
    return DriveClient(
        handle.url, token_credentials(token if token is not None else handle.token), **options
    )


@pytest.fixture
def client(emulator) -> DriveClient:
    return make_client(emulator)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, incompressible-looking bytes."""
    out = bytearray()
    block = hashlib.sha256(f"{seed}".encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def write(path, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return os.fspath(path)
