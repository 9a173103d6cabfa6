"""``about.get`` (storage quota) and the ``changes`` feed."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from colab_magics.emulator.context import Context
from colab_magics.emulator.errors import DriveError, invalid
from colab_magics.emulator.fields import CHANGES_LIST_DEFAULT, apply_fields
from colab_magics.emulator.resources import USER, file_resource
from colab_magics.emulator.wire import json_response, param_bool, param_int


def _required(name: str) -> DriveError:
    return DriveError(
        400, "required", f"The '{name}' parameter is required for this method.", location=name
    )


def about(ctx: Context, request: Request) -> Response:
    fields = request.args.get("fields")
    if not fields or not fields.strip():
        raise _required("fields")
    usage, trash = ctx.store.usage()
    quota: dict[str, str] = {
        "usage": str(usage),
        "usageInDrive": str(usage),
        "usageInDriveTrash": str(trash),
    }
    if ctx.settings.quota_bytes is not None:
        quota["limit"] = str(ctx.settings.quota_bytes)
    resource = {
        "kind": "drive#about",
        "user": USER,
        "storageQuota": quota,
        "maxUploadSize": "5242880000000",
        "appInstalled": False,
        "canCreateDrives": False,
        "importFormats": {},
        "exportFormats": {},
        "maxImportSizes": {},
        "folderColorPalette": [],
        "rootFolderId": ctx.store.root_id,
    }
    return json_response(apply_fields(resource, fields, default=fields, schema="About"))


def start_page_token(ctx: Context, request: Request) -> Response:
    resource = {"kind": "drive#startPageToken", "startPageToken": str(ctx.store.start_page_token())}
    return json_response(
        apply_fields(resource, request.args.get("fields"), default="*", schema="StartPageToken")
    )


def list_changes(ctx: Context, request: Request) -> Response:
    token = request.args.get("pageToken")
    if not token:
        raise _required("pageToken")
    try:
        seq = int(token)
    except ValueError:
        seq = 0
    if seq < 1:
        raise invalid("Invalid Value", location="pageToken")
    page_size = min(param_int(request, "pageSize", 100, minimum=1), 1000)
    include_removed = param_bool(request, "includeRemoved", True)
    rows = ctx.store.changes_since(seq, page_size + 1)
    more = len(rows) > page_size
    rows = rows[:page_size]
    # One entry per file: its latest change in this page, showing the file as it is now.
    latest: dict[str, Any] = {}
    for row in rows:
        latest.pop(row["file_id"], None)
        latest[row["file_id"]] = row
    records = {r.id: r for r in ctx.store.get_many(list(latest))}
    changes = []
    for file_id, row in latest.items():
        record = records.get(file_id)
        removed = record is None
        if removed and not include_removed:
            continue
        change: dict[str, Any] = {
            "kind": "drive#change",
            "changeType": "file",
            "type": "file",
            "time": row["time"],
            "removed": removed,
            "fileId": file_id,
        }
        if record is not None:
            change["file"] = file_resource(record)
        changes.append(change)
    page: dict[str, Any] = {"kind": "drive#changeList", "changes": changes}
    if more:
        page["nextPageToken"] = str(rows[-1]["seq"] + 1)
    else:
        last = rows[-1]["seq"] + 1 if rows else seq
        page["newStartPageToken"] = str(max(last, seq))
    fields = request.args.get("fields")
    return json_response(
        apply_fields(page, fields, default=CHANGES_LIST_DEFAULT, schema="ChangeList")
    )
