"""The Drive v3 WSGI application: routing, bearer-token check and error rendering."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from colab_magics.emulator import account, files_api, uploads
from colab_magics.emulator.context import Context
from colab_magics.emulator.errors import DriveError, auth_error
from colab_magics.emulator.gate import RAW_TARGET, token_ok
from colab_magics.emulator.sessions import Sessions
from colab_magics.emulator.settings import EmulatorSettings
from colab_magics.emulator.store import Store
from colab_magics.emulator.wire import error_response, read_small_body

log = logging.getLogger(__name__)

Handler = Callable[..., Response]

_UPLOAD_PREFIXES = ("/upload/drive/v3", "/resumable/upload/drive/v3")

_RULES: list[tuple[str, list[str], Handler]] = [
    ("/drive/v3/files", ["GET"], files_api.list_files),
    ("/drive/v3/files", ["POST"], files_api.create),
    ("/drive/v3/files/generateIds", ["GET"], files_api.generate_ids),
    ("/drive/v3/files/trash", ["DELETE"], files_api.empty_trash),
    ("/drive/v3/files/<file_id>", ["GET"], files_api.get),
    ("/drive/v3/files/<file_id>", ["PATCH"], files_api.update),
    ("/drive/v3/files/<file_id>", ["DELETE"], files_api.delete),
    ("/drive/v3/files/<file_id>/copy", ["POST"], files_api.copy),
    ("/drive/v3/files/<file_id>/export", ["GET"], files_api.export),
    ("/drive/v3/about", ["GET"], account.about),
    ("/drive/v3/changes", ["GET"], account.list_changes),
    ("/drive/v3/changes/startPageToken", ["GET"], account.start_page_token),
]
for _prefix in _UPLOAD_PREFIXES:
    _RULES += [
        (f"{_prefix}/files", ["POST", "PUT"], uploads.upload),
        (f"{_prefix}/files/<file_id>", ["PATCH", "PUT", "POST"], uploads.upload),
    ]


def _route_map() -> Map:
    rules = []
    for i, (path, methods, _handler) in enumerate(_RULES):
        rules.append(Rule(path, methods=methods, endpoint=i, strict_slashes=False))
    # merge_slashes=False: werkzeug would answer "//drive/v3/files" with a 308 to the merged
    # path, which Google does not; such a path is simply unknown here.
    return Map(rules, merge_slashes=False)


class DriveApp:
    """A WSGI app speaking Drive v3 over the state in ``root``.

    ``settings`` is read on every request, so quota and listing lag may change at run time.
    """

    def __init__(self, root: str | Path, settings: EmulatorSettings, *, token: str) -> None:
        self.store = Store(root, settings)
        self.ctx = Context(self.store, Sessions(self.store), settings)
        self._token = token
        self._map = _route_map()

    def close(self) -> None:
        self.store.close()

    def dispatch(self, request: Request) -> Response:
        if not token_ok(request.headers.get("Authorization", ""), self._token):
            raise auth_error()
        raw_path = request.environ.get(RAW_TARGET, "").split("?", 1)[0]
        if not raw_path.startswith("/"):  # absolute-form (RFC 9112 3.2.2): the path part
            raw_path = urlsplit(raw_path).path
        if "//" in raw_path or "//" in request.path:
            raise UnknownRoute()  # no Drive path has an empty segment
        adapter = self._map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except MethodNotAllowed:
            raise DriveError(405, "methodNotAllowed", "Method not allowed.") from None
        except NotFound:
            raise UnknownRoute() from None
        return _RULES[endpoint][2](self.ctx, request, **args)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        try:
            override_method(environ)
            request = Request(environ)
            response = self.dispatch(request)
        except UnknownRoute:
            response = Response(
                _NOT_FOUND_PAGE, status=404, content_type="text/html; charset=UTF-8"
            )
        except DriveError as e:
            response = error_response(e)
        except HTTPException as e:
            # werkzeug's own (a body cut short, a malformed header): keep Google's error shape.
            code = e.code or 400
            reason = "badRequest" if code == 400 else "backendError"
            response = error_response(DriveError(code, reason, e.description or e.name))
        except Exception:
            log.exception("emulator: %s %s failed", request.method, request.path)
            response = error_response(DriveError(500, "backendError", "Backend Error"))
        return response(environ, start_response)


class UnknownRoute(Exception):
    """A path no Drive method has."""


_NOT_FOUND_PAGE = (
    "<!DOCTYPE html><html lang=en><title>Error 404 (Not Found)</title>"
    "<p><b>404.</b> <ins>That's an error.</ins><p>The requested URL was not found on this "
    "server. <ins>That's all we know.</ins></html>"
)
"""Google's front end answers an unknown URL with an HTML page, not Drive's JSON ``notFound``
(which means a file): a client must not read one as the other."""

_OVERRIDABLE = ("GET", "PATCH", "PUT", "DELETE")


def override_method(environ: dict) -> None:
    """Honour ``X-HTTP-Method-Override`` on a POST, as Google's front end does.

    google-api-python-client sends a GET whose URL passes 2048 characters
    (``googleapiclient/http.py``, ``MAX_URI_LENGTH``) as a POST with the override header and
    the query string as an ``application/x-www-form-urlencoded`` body; the body's parameters
    join the URL's.
    """
    wanted = environ.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").strip().upper()
    if not wanted or environ.get("REQUEST_METHOD") != "POST":
        return
    if wanted not in _OVERRIDABLE:
        raise DriveError(400, "badRequest", f"Unsupported X-HTTP-Method-Override: {wanted}.")
    environ["REQUEST_METHOD"] = wanted
    ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if wanted == "GET" and ctype == "application/x-www-form-urlencoded":
        form = read_small_body(Request(environ)).decode("latin-1").strip()
        query = environ.get("QUERY_STRING", "")
        environ["QUERY_STRING"] = "&".join(p for p in (query, form) if p)
        environ["CONTENT_LENGTH"] = "0"
        environ.pop("CONTENT_TYPE", None)
        environ["wsgi.input"] = io.BytesIO(b"")


def make_app(root: str | Path, settings: EmulatorSettings, *, token: str) -> DriveApp:
    """The emulator's Drive v3 app, without fault injection or batch handling."""
    return DriveApp(root, settings, token=token)
