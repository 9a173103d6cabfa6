"""Deleting (permanent, batched), trash, and quota.

``files.delete`` removes a file at once and frees its quota; trashing keeps it counted until
the trash is emptied. Deletes go in batch requests of at most 100 calls (Drive's batch limit);
each part that failed with a retryable error goes into the next round, and a part answering
404 counts as deleted (a retried delete whose first answer was lost).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from colab_magics.drive.errors import DriveError, DriveNotFound, map_exception
from colab_magics.drive.model import Quota
from colab_magics.drive.retry import is_retryable
from colab_magics.drive.transport import Transport
from colab_magics.progress import NO_PROGRESS, Callback

BATCH_LIMIT = 100


def delete_many(
    transport: Transport,
    file_ids: Sequence[str],
    *,
    batch_size: int = BATCH_LIMIT,
    progress: Callback = NO_PROGRESS,
) -> dict[str, DriveError]:
    """Delete ``file_ids`` permanently; returns ``{id: error}`` for those that failed for good."""
    if not 1 <= batch_size <= BATCH_LIMIT:
        raise ValueError(f"batch_size must be 1..{BATCH_LIMIT}")
    failed: dict[str, DriveError] = {}
    file_ids = list(dict.fromkeys(file_ids))  # a batch refuses two parts with one request id
    progress.set_files(len(file_ids))
    for start in range(0, len(file_ids), batch_size):
        _delete_batch(transport, list(file_ids[start : start + batch_size]), failed, progress)
    return failed


def _delete_batch(
    transport: Transport, ids: list[str], failed: dict[str, DriveError], progress: Callback
) -> None:
    files = transport.files
    retrier = transport.retrier
    pending = list(ids)
    attempt = 0
    while pending:
        attempt += 1
        results: dict[str, BaseException | None] = {}
        batch = transport.service.new_batch_http_request(callback=_recorder(results))
        for file_id in pending:
            batch.add(files.delete(fileId=file_id), request_id=file_id)
        retrier.pacer.acquire(len(pending))
        transport.count()
        try:
            batch.execute(http=transport.http)
        except Exception as exc:  # the whole batch failed: maybe retry it all
            retrier.retry_or_raise(exc, attempt, what="batch delete", on_retry=progress.retry)
            continue
        retry_ids: list[str] = []
        worst: DriveError | None = None
        for file_id in pending:
            exc = results.get(file_id)
            error = None if exc is None else map_exception(exc, what=file_id)
            if error is None or isinstance(error, DriveNotFound):
                progress.file_done(file_id)
            elif isinstance(error, DriveError) and is_retryable(error):
                retry_ids.append(file_id)
                worst = error
            else:
                failed[file_id] = error if isinstance(error, DriveError) else DriveError(str(exc))
                progress.error(failed[file_id], file_id)
        pending = retry_ids
        if pending and worst is not None and not retrier.backoff(worst, attempt, progress.retry):
            for file_id in pending:
                failed[file_id] = worst
                progress.error(worst, file_id)
            return


def _recorder(results: dict[str, BaseException | None]) -> Any:
    def done(request_id: str, _response: Any, exception: BaseException | None) -> None:
        results[request_id] = exception

    return done


def trash(transport: Transport, file_id: str) -> None:
    """Move one file to the trash (it still counts against quota until emptied)."""
    files = transport.files
    transport.execute(
        lambda: files.update(fileId=file_id, body={"trashed": True}, fields="id"), what=file_id
    )


def empty_trash(transport: Transport) -> None:
    """Delete everything in the trash permanently."""
    files = transport.files
    transport.execute(lambda: files.emptyTrash(), what="empty trash")


def quota(transport: Transport) -> Quota:
    """Storage limit and usage, trash included."""
    about = transport.about
    return Quota.from_api(transport.execute(lambda: about.get(fields="storageQuota"), what="quota"))
