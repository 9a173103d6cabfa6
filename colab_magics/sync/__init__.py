"""Moving trees between local disk and Drive through the API: verified, parallel, resumable.

``push`` uploads what differs, ``pull`` downloads what differs (and can extract an archive
safely), ``sharded`` reads a sharded layout back, ``Watcher`` keeps pushing a folder in the
background. No IPython here: the magics wrap these functions.
"""

from colab_magics.sync.archive import extract
from colab_magics.sync.errors import ArchiveError, SyncAborted, SyncError
from colab_magics.sync.pull import pull
from colab_magics.sync.push import push
from colab_magics.sync.report import SyncReport
from colab_magics.sync.shard import sharded
from colab_magics.sync.watch import Watcher

__all__ = [
    "ArchiveError",
    "SyncAborted",
    "SyncError",
    "SyncReport",
    "Watcher",
    "extract",
    "pull",
    "push",
    "sharded",
]
