"""Permanent, batched deletion of a big tree: killed half way, a re-run finishes it."""

from __future__ import annotations

import os

import pytest

from colab_magics.drive import connect
from colab_magics.emulator.records import NewFile
from colab_magics.sync.purge import plan_purge, purge
from tests.sync.conftest import KillAfter


def test_purge_of_5000_files_killed_half_way_is_finished_by_a_rerun(emulator):
    client = connect(url=emulator.url, token=emulator.token)
    try:
        folders = [client.ensure_folder(f"big/s{i}") for i in range(10)]
        for i in range(5000):  # metadata straight into the store: setup in a second
            emulator.app.store.create(NewFile(name=f"f{i}", parents=[folders[i % 10].id]), None)
        for i in range(20):
            client.upload(os.urandom(1000), f"big/s0/c{i}.bin")
        assert client.quota().usage == 20_000

        plan = plan_purge("big", client=client)
        assert len(plan.files) == 5020 and len(plan.folders) == 10 and plan.bytes == 20_000
        with pytest.raises(KeyboardInterrupt):
            purge(plan, client=client, progress=KillAfter(2500))
        left = plan_purge("big", client=client)
        assert 0 < len(left.files) <= 5020 - 2500

        report = purge(left, client=client)
        assert report.deleted_files == len(left.files) and report.deleted_folders == 11
        assert not client.exists("big")
        quota = client.quota()
        assert quota.usage == 0 and quota.usage_in_trash == 0  # nothing went to the trash
    finally:
        client.close()
