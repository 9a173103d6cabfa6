"""The Drive v3 client the whole extension stands on (no IPython or widget imports).

``connect()`` picks Drive or the emulator and returns a :class:`DriveClient`; everything the
client raises for a failed Drive call is a :class:`DriveError` subclass::

    client = connect()                       # Colab, a configured server, or the emulator
    print(client.description)
    up = client.upload("model.pt", "checkpoints/run1/model.pt", progress=TransferProgress())
    client.download("checkpoints/run1/model.pt", "/tmp/model.pt")   # md5-verified
    client.delete(["checkpoints/old"]); client.quota().usage_in_trash
"""

from colab_magics.drive.client import DriveClient
from colab_magics.drive.connect import connect
from colab_magics.drive.download import DownloadResult
from colab_magics.drive.errors import (
    DriveAuthError,
    DriveConflictError,
    DriveDuplicateError,
    DriveError,
    DriveIntegrityError,
    DriveNotDownloadable,
    DriveNotFound,
    DriveQuotaError,
    DriveRateLimited,
    DriveTransientError,
)
from colab_magics.drive.listing import Entry, TreeIndex
from colab_magics.drive.model import DriveFile, Quota
from colab_magics.drive.paths import DuplicateNameWarning, Resolution, parse_path
from colab_magics.drive.pool import PoolOutcome
from colab_magics.drive.retry import Pacer, RetryPolicy
from colab_magics.drive.upload import UploadResult
from colab_magics.progress import NO_PROGRESS, Callback, TransferProgress

__all__ = [
    "NO_PROGRESS",
    "Callback",
    "DownloadResult",
    "DriveAuthError",
    "DriveClient",
    "DriveConflictError",
    "DriveDuplicateError",
    "DriveError",
    "DriveFile",
    "DriveIntegrityError",
    "DriveNotDownloadable",
    "DriveNotFound",
    "DriveQuotaError",
    "DriveRateLimited",
    "DriveTransientError",
    "DuplicateNameWarning",
    "Entry",
    "Pacer",
    "PoolOutcome",
    "Quota",
    "Resolution",
    "RetryPolicy",
    "TransferProgress",
    "TreeIndex",
    "UploadResult",
    "connect",
    "parse_path",
]
