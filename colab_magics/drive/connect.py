"""Choosing what to talk to: Drive on Colab, a configured server, real Drive, or the emulator.

``connect()`` takes the first of these that applies:

1. explicit arguments: ``url`` (+ ``token``) for a Drive-compatible server, or
   ``credentials`` / ``credentials_file`` (a service-account key) for real Drive;
2. on Colab (``google.colab`` importable): ``google.colab.auth.authenticate_user()``, then
   ``google.auth.default(scopes)``; the mount is ``/content/drive/MyDrive``;
3. ``COLAB_MAGICS_DRIVE_URL`` (+ ``COLAB_MAGICS_DRIVE_TOKEN``): that server (our emulator);
4. ``GOOGLE_APPLICATION_CREDENTIALS`` or gcloud's application-default credentials file: real
   Drive (the GCE metadata server is not probed: it hangs for seconds off Google Cloud and its
   default account has no Drive scope);
5. nothing: the embedded emulator on loopback, storing under a per-user data folder (and,
   given a mount path, mirroring its Drive there like Colab's mount, with its lag).

The scope is ``drive.file`` (files this app creates) unless ``scope="drive"`` is asked for.
Tokens are never printed, logged or saved.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any

from colab_magics.drive.client import DriveClient
from colab_magics.drive.paths import COLAB_MOUNT
from colab_magics.drive.service import DRIVE_ROOT_URL, token_credentials

ENV_URL = "COLAB_MAGICS_DRIVE_URL"
ENV_TOKEN = "COLAB_MAGICS_DRIVE_TOKEN"
ENV_MOUNT = "COLAB_MAGICS_MOUNT"
SCOPES = {
    "file": "https://www.googleapis.com/auth/drive.file",
    "drive": "https://www.googleapis.com/auth/drive",
}


def scope_url(scope: str) -> str:
    """``"file"`` -> drive.file, ``"drive"``/``"full"`` -> drive; a full URL passes through."""
    if scope == "full":
        scope = "drive"
    if scope in SCOPES:
        return SCOPES[scope]
    if scope.startswith("https://"):
        return scope
    raise ValueError(f"unknown Drive scope {scope!r}: use 'file' (default) or 'drive'")


def on_colab() -> bool:
    try:
        return importlib.util.find_spec("google.colab") is not None
    except (ImportError, ValueError):
        return False


def default_data_dir() -> Path:
    """Where the embedded emulator keeps its Drive: ``$XDG_DATA_HOME/colab_magics/drive``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local/share")
    return Path(base) / "colab_magics" / "drive"


def adc_file() -> str | None:
    """The application-default credentials file in use, if there is one."""
    env = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if env:
        return env
    try:
        from google.auth import _cloud_sdk

        path = _cloud_sdk.get_application_default_credentials_path()
    except Exception:  # private helper: absent or changed means "no file"
        return None
    return path if path and os.path.isfile(path) else None


def connect(
    *,
    url: str | None = None,
    token: str | None = None,
    credentials: Any = None,
    credentials_file: str | os.PathLike[str] | None = None,
    mount: str | os.PathLike[str] | None = None,
    scope: str = "file",
    data_dir: str | os.PathLike[str] | None = None,
    **client_options: Any,
) -> DriveClient:
    """A :class:`DriveClient` for the first source that applies (see the module docstring).

    ``client_options`` go to :class:`DriveClient` (``chunk_size``, ``workers``, ``rate``...).
    The returned client's ``description`` says in one line what it is connected to; close it
    to stop an embedded emulator.
    """
    scopes = [scope_url(scope)]
    mount_root = os.fspath(mount) if mount is not None else os.environ.get(ENV_MOUNT)

    if url is not None:
        return _server(url, token or os.environ.get(ENV_TOKEN), mount_root, client_options)
    if credentials is not None:
        return _real(credentials, mount_root, "the given credentials", client_options)
    if credentials_file is not None:
        return _real(
            _service_account(credentials_file, scopes),
            mount_root,
            f"the service account in {os.fspath(credentials_file)}",
            client_options,
        )
    if on_colab():
        return _colab(scopes, mount_root, client_options)
    if os.environ.get(ENV_URL):
        return _server(os.environ[ENV_URL], token or os.environ.get(ENV_TOKEN), mount_root,
                       client_options)  # fmt: skip
    if adc_file():
        import google.auth

        creds, _ = google.auth.default(scopes=scopes)
        return _real(creds, mount_root, "application-default credentials", client_options)
    return _embedded(data_dir, mount_root, client_options)


def _service_account(path: str | os.PathLike[str], scopes: list[str]) -> Any:
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_file(os.fspath(path), scopes=scopes)


def _colab(scopes: list[str], mount_root: str | None, options: dict[str, Any]) -> DriveClient:
    import google.auth

    auth = importlib.import_module("google.colab.auth")
    auth.authenticate_user()
    creds, _ = google.auth.default(scopes=scopes)
    return _real(creds, mount_root or COLAB_MOUNT, "your Google account (Colab)", options)


def _real(creds: Any, mount_root: str | None, who: str, options: dict[str, Any]) -> DriveClient:
    return DriveClient(
        DRIVE_ROOT_URL,
        creds,
        mount_root=mount_root,
        description=f"Using Google Drive as {who}.",
        **options,
    )


def _server(
    url: str, token: str | None, mount_root: str | None, options: dict[str, Any]
) -> DriveClient:
    if not token:
        raise ValueError(
            f"A Drive server URL ({url}) needs a token: pass token=... or set {ENV_TOKEN}."
        )
    # An emulator has no per-user request budget to protect: pace only if asked.
    options = {"rate": None, **options}
    return DriveClient(
        url,
        token_credentials(token),
        mount_root=mount_root,
        description=f"Using the Drive server at {url}.",
        **options,
    )


def _embedded(
    data_dir: str | os.PathLike[str] | None, mount_root: str | None, options: dict[str, Any]
) -> DriveClient:
    from colab_magics.emulator import start_emulator

    root = Path(data_dir) if data_dir is not None else default_data_dir()
    root.mkdir(parents=True, exist_ok=True)
    # With a mount path, the emulator mirrors its Drive there the way Colab's mount does.
    handle = start_emulator(root, mount=mount_root) if mount_root else start_emulator(root)
    options = {"rate": None, **options}
    client = DriveClient(
        handle.url,
        token_credentials(handle.token),
        mount_root=mount_root,
        description=(
            f"Using the local Drive emulator at {handle.url} (no Google account); "
            f"files are kept in {root}."
        ),
        **options,
    )
    client.emulator = handle
    client.add_close_callback(handle.stop)
    return client
