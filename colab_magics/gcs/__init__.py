"""Google Cloud Storage beside Drive: ``gs://`` pulls and pushes, and a checkpoint store.

Nothing here imports google-cloud-storage until a ``gs://`` path is used; without it, that
use fails with one line naming the extra (``pip install 'colab_magics[gcs]'``).
"""

from colab_magics.gcs.client import GcsClient, GcsObject
from colab_magics.gcs.errors import GcsError, GcsIntegrityError, GcsMissingLibrary
from colab_magics.gcs.paths import GsPath, is_gs, parse_gs
from colab_magics.gcs.pull import pull
from colab_magics.gcs.push import push

__all__ = [
    "GcsClient",
    "GcsError",
    "GcsIntegrityError",
    "GcsMissingLibrary",
    "GcsObject",
    "GsPath",
    "is_gs",
    "parse_gs",
    "pull",
    "push",
]
