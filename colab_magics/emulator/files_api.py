"""The metadata side of the ``files`` resource: get, list, create, update, copy, delete."""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

from colab_magics.emulator import media
from colab_magics.emulator.context import Context
from colab_magics.emulator.errors import invalid
from colab_magics.emulator.fields import (
    FILE_DEFAULT,
    FILES_LIST_DEFAULT,
    apply_fields,
    require_valid_fields,
)
from colab_magics.emulator.metadata import file_changes, new_file
from colab_magics.emulator.query import compile_order_by, compile_query
from colab_magics.emulator.records import FileRecord, new_file_id
from colab_magics.emulator.resources import file_resource
from colab_magics.emulator.wire import (
    json_response,
    param_int,
    param_list,
    read_json_body,
)

MAX_PAGE_SIZE = 1000


def _answer(request: Request, record: FileRecord) -> Response:
    return json_response(
        apply_fields(
            file_resource(record), request.args.get("fields"), default=FILE_DEFAULT, schema="File"
        )
    )


def get(ctx: Context, request: Request, file_id: str) -> Response:
    alt = request.args.get("alt", "json")
    record = ctx.store.require(file_id)
    if alt == "media":
        try:
            return media.download(ctx.store, request, record)
        except FileNotFoundError:
            # The content was replaced between the lookup and the open: read the new one.
            return media.download(ctx.store, request, ctx.store.require(file_id))
    if alt != "json":
        raise invalid(f"Invalid value '{alt}' for alt.", location="alt")
    return _answer(request, record)


def export(ctx: Context, request: Request, file_id: str) -> Response:
    return media.export(ctx.store, request, ctx.store.require(file_id))


def create(ctx: Context, request: Request) -> Response:
    require_valid_fields(request.args.get("fields"), schema="File")
    spec = new_file(read_json_body(request))
    return _answer(request, ctx.store.create(spec, None))


def update(ctx: Context, request: Request, file_id: str) -> Response:
    require_valid_fields(request.args.get("fields"), schema="File")
    changes = file_changes(read_json_body(request))
    changes.add_parents = param_list(request, "addParents")
    changes.remove_parents = param_list(request, "removeParents")
    return _answer(request, ctx.store.update(file_id, changes, None))


def copy(ctx: Context, request: Request, file_id: str) -> Response:
    require_valid_fields(request.args.get("fields"), schema="File")
    body = read_json_body(request)
    source = ctx.store.require(file_id)
    # files.copy: "If name is not specified, the copy is named 'Copy of' + the name"; the
    # stricter reading of Drive (v2 documents it as the default title of a copy).
    body.setdefault("name", f"Copy of {source.name}")
    body.setdefault("mimeType", source.mime_type)
    if "description" not in body and source.description is not None:
        body["description"] = source.description
    return _answer(request, ctx.store.copy(source.id, new_file(body)))


def delete(ctx: Context, request: Request, file_id: str) -> Response:
    ctx.store.delete(file_id)
    return Response(status=204)


def empty_trash(ctx: Context, request: Request) -> Response:
    ctx.store.empty_trash()
    return Response(status=204)


def generate_ids(ctx: Context, request: Request) -> Response:
    count = param_int(request, "count", 10, minimum=1)
    if count > 1000:
        raise invalid("Invalid value for count: at most 1000.", location="count")
    space = request.args.get("space", "drive")
    if space not in ("drive", "appDataFolder"):
        raise invalid(f"Invalid value '{space}' for space.", location="space")
    ids = [new_file_id() for _ in range(count)]
    return json_response({"kind": "drive#generatedIds", "space": space, "ids": ids})


# -- files.list -----------------------------------------------------------------------------------


def list_files(ctx: Context, request: Request) -> Response:
    q = request.args.get("q")
    order_spec = request.args.get("orderBy")
    page_size = param_int(request, "pageSize", 100, minimum=1)
    # Drive quietly caps the page size rather than refusing larger values.
    page_size = min(page_size, MAX_PAGE_SIZE)
    where, params = compile_query(q, root_id=ctx.store.root_id)
    order_by = compile_order_by(order_spec)
    spaces = request.args.get("spaces", "drive")
    listing = f"{q or ''}\0{order_spec or ''}\0{spaces}"

    def id_at(position: int) -> str | None:
        found = ctx.store.search(where, params, order_by, 1, position)
        return found[0].id if found else None

    token = request.args.get("pageToken")
    offset, last, was_empty = (
        ctx.page_tokens.read(token, listing, id_at) if token else (0, None, False)
    )
    wanted = {part.strip() for part in spaces.split(",") if part.strip()}
    if not wanted or wanted - {"drive", "appDataFolder"}:
        raise invalid(f"Invalid Value '{spaces}' for spaces.", location="spaces")
    if "drive" not in wanted:  # nothing here lives in appDataFolder
        records: list[FileRecord] = []
    else:
        records = ctx.store.search(where, params, order_by, page_size + 1, offset)
    shown = min(page_size, len(records))
    # Drive may answer fewer than pageSize files, even none, and still have more; never two
    # empty pages in a row, so a listing always gets to its end.
    least = 1 if was_empty else 0
    if shown > least and ctx.chance() < ctx.settings.short_page_rate:
        shown = least + int(ctx.chance() * (shown - least))
    page: dict = {
        "kind": "drive#fileList",
        "incompleteSearch": False,
        "files": [file_resource(r) for r in records[:shown]],
    }
    if len(records) > shown:
        last = records[shown - 1].id if shown else last  # an empty page keeps the cursor
        page["nextPageToken"] = ctx.page_tokens.issue(
            listing, offset + shown, last, empty=not shown
        )
    return json_response(
        apply_fields(
            page, request.args.get("fields"), default=FILES_LIST_DEFAULT, schema="FileList"
        )
    )
