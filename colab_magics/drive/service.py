"""Build a google-api-python-client Drive v3 service for any server: Drive or our emulator."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import google.oauth2.credentials
import google_auth_httplib2
import httplib2
from googleapiclient.discovery import build_from_document

from colab_magics.drive.errors import is_transport_error

DRIVE_ROOT_URL = "https://www.googleapis.com/"


@lru_cache(maxsize=1)
def _shipped_document() -> str:
    """Drive v3's discovery document as shipped inside google-api-python-client."""
    docs = resources.files("googleapiclient.discovery_cache") / "documents"
    return (docs / "drive.v3.json").read_text(encoding="utf-8")


def discovery_document(root_url: str = DRIVE_ROOT_URL) -> dict[str, Any]:
    """The shipped discovery document with every URL moved to ``root_url``.

    ``client_options.api_endpoint`` alone does not move the media upload path, which the
    library builds from the document's ``rootUrl``; rewriting the document moves all of it.
    """
    if not root_url.endswith("/"):
        root_url += "/"
    doc = json.loads(_shipped_document())
    doc["rootUrl"] = root_url
    doc["mtlsRootUrl"] = root_url
    doc["baseUrl"] = root_url + doc["servicePath"]
    return doc


class _AuthorizedHttp(google_auth_httplib2.AuthorizedHttp):
    """An authorized Http that closes its connections when one fails.

    httplib2 keeps a connection whose answer was cut off mid-body, and the next request on it
    fails at once (broken pipe) though nothing new went wrong: every cut would cost a second
    retry and its backoff. Closed, the next request opens a fresh connection.
    """

    def request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().request(*args, **kwargs)
        except Exception as exc:
            if is_transport_error(exc):
                self.http.close()
            raise


def authorized_http(credentials: Any, *, timeout: float | None = 60) -> httplib2.Http:
    """One authorized HTTP connection object; httplib2 is not thread-safe: one per thread."""
    http = httplib2.Http(timeout=timeout)
    # Drive answers resumable chunks with 308 "Resume Incomplete", not a redirect (as
    # googleapiclient.http.build_http does for the Http objects it makes itself).
    http.redirect_codes = http.redirect_codes - {308}
    return _AuthorizedHttp(credentials, http=http)


def token_credentials(token: str) -> google.oauth2.credentials.Credentials:
    """Credentials carrying a fixed bearer token (the emulator's); they cannot refresh."""
    return google.oauth2.credentials.Credentials(token=token)


def build_drive_service(
    root_url: str = DRIVE_ROOT_URL,
    *,
    credentials: Any = None,
    http: httplib2.Http | None = None,
) -> Any:
    """A Drive v3 service object talking to ``root_url``.

    Pass either ``credentials`` (an authorized Http is made from them) or a ready ``http``.
    """
    if http is None:
        if credentials is None:
            raise ValueError("build_drive_service needs credentials or an authorized http")
        http = authorized_http(credentials)
    return build_from_document(discovery_document(root_url), http=http)
