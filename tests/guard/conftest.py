"""An emulator with its simulated mount, a real client mapping the mount, and helpers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from colab_magics.drive import DriveClient, RetryPolicy
from colab_magics.drive.service import token_credentials
from colab_magics.emulator import start_emulator

FAST_RETRY = RetryPolicy(max_attempts=20, base_delay=0.01, max_delay=0.2)


class MountedDrive:
    """``handle`` (emulator + mount), ``mount`` (the mount folder) and ``client``."""

    def __init__(self, handle, mount: Path, client: DriveClient) -> None:
        self.handle, self.mount, self.client = handle, mount, client

    def upload(self, files: dict[str, bytes]) -> None:
        """Put files on Drive through the API (not through the mount)."""
        for rel, data in files.items():
            self.client.upload(data, rel)

    def settle(self) -> None:
        """Let the mount catch up with Drive now (as it would after a while)."""
        self.handle.mount.sync_now()


@pytest.fixture
def mounted(tmp_path) -> Callable[..., MountedDrive]:
    """``mounted(lag=..., cap=...)``: a fresh emulator with a simulated mount (stopped after)."""
    started: list[MountedDrive] = []

    def start(*, lag: float = 30.0, cap: int | None = None) -> MountedDrive:
        mnt = tmp_path / f"mnt{len(started)}"
        handle = start_emulator(
            tmp_path / f"drive{len(started)}", mount=mnt, mount_lag=lag, mount_list_cap=cap
        )
        client = DriveClient(
            handle.url, token_credentials(handle.token), mount_root=str(mnt), rate=None,
            policy=FAST_RETRY, workers=4, timeout=30,
        )  # fmt: skip
        started.append(MountedDrive(handle, mnt, client))
        return started[-1]

    yield start
    for m in started:
        m.client.close()
        m.handle.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


# Everything written from now on counts as "written in this runtime".
def a_minute_ago() -> float:
    return time.time() - 60
