"""What sync raises, and the one place that turns a fatal failure into a message with the fix.

Bad input (a path that does not exist, a file where a folder is expected, an unsafe or corrupt
archive) is a :class:`SyncError`, a ``ValueError``. A failure that stops the whole run — Drive
full, the store (Drive or a bucket) unreachable, credentials refused, local disk full — is a
:class:`SyncAborted` carrying the report of what was done before it; a re-run continues from
there.
"""

from __future__ import annotations

import errno
from typing import Any

from colab_magics.drive.errors import DriveAuthError, DriveQuotaError, DriveTransientError
from colab_magics.sync.report import SyncAborted as SyncAborted


class SyncError(ValueError):
    """Bad input: a path, a layout or an archive that sync cannot work with as given."""


class ArchiveError(SyncError):
    """An archive that is corrupt, of an unknown kind, or refused (:class:`ArchiveRefused`)."""


class ArchiveRefused(ArchiveError):
    """An archive refused for safety: an entry that would land or point outside the target, a
    special file, or more data than the size limit. Its message names the entry or the number;
    nothing of the refused extraction is kept."""


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def is_unreachable(exc: BaseException) -> bool:
    """A connection-level failure (no HTTP status): the server is down or the network is."""
    return isinstance(exc, DriveTransientError) and exc.status is None


def _gcs_fatal() -> tuple[type[BaseException], ...]:
    """A bucket's errors that stop a run; imported here, not at the top, because the gcs
    package's own modules import this one."""
    from colab_magics.gcs.errors import GcsAuthError, GcsMissingLibrary, GcsUnreachable

    return GcsAuthError, GcsUnreachable, GcsMissingLibrary


def is_fatal(exc: BaseException) -> bool:
    """Whether ``exc`` means no further file of the run can succeed (stop, don't go on),
    whichever store the run talks to."""
    return (
        isinstance(exc, (DriveQuotaError, DriveAuthError, *_gcs_fatal()))
        or is_unreachable(exc)
        or (is_disk_full(exc))
    )


def fatal_message(exc: BaseException, *, action: str, where: str, client: Any = None) -> str | None:
    """The paragraph to show when ``exc`` means no further file can succeed, else ``None``.

    ``action`` is what was being done ("push of data/ to drive:x"), ``where`` the local path
    being written or read. A bucket's errors say what to check themselves (credentials, the
    endpoint); Drive's get the Drive-specific fix here.
    """
    again = "Run the same command again afterwards: files already done are skipped."
    if isinstance(exc, DriveQuotaError):
        return (
            f"{action} stopped: your Google Drive is full, so Drive refused the upload. "
            "Trashed files still count against the quota: run `%drive_quota --empty-trash`, "
            "or delete big trees permanently with `%drive_purge PATH`, or buy more storage. "
            + again
        )
    if isinstance(exc, (DriveAuthError, *_gcs_fatal()[:2])):
        return f"{action} stopped: {exc} {again}"
    if is_unreachable(exc):
        target = getattr(client, "description", "") or getattr(client, "root_url", "Drive")
        return (
            f"{action} stopped: Drive could not be reached ({target}): {exc} "
            "Check the network connection, or that the Drive emulator is running "
            "(`python -m colab_magics.emulator --root DIR`) and the client points at it "
            "(`%drive_connect`). " + again
        )
    if is_disk_full(exc):
        return (
            f"{action} stopped: the local disk is full (writing under {where}). "
            "Partly written files were removed. Free space (`df -h`; delete what you no "
            "longer need) or choose a folder on a bigger disk. " + again
        )
    return None
