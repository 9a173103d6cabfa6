"""Start the emulator in-process: the Drive app behind batch and fault layers, on loopback."""

from __future__ import annotations

import ipaddress
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer

from colab_magics.emulator.app import DriveApp
from colab_magics.emulator.batch import BatchMiddleware
from colab_magics.emulator.faults import FaultMiddleware
from colab_magics.emulator.httpserver import close_connections, make_keepalive_server
from colab_magics.emulator.mount import MountSimulator
from colab_magics.emulator.settings import EmulatorSettings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EmulatorHandle:
    """A running emulator: ``url``, ``token``, ``settings``, ``root``, ``mount``; ``stop()``."""

    def __init__(
        self,
        *,
        server: BaseWSGIServer,
        thread: threading.Thread,
        app: DriveApp,
        wsgi: Any,
        token: str,
        settings: EmulatorSettings,
        root: Path,
        mount: MountSimulator | None,
    ) -> None:
        self._server = server
        self._thread = thread
        self.app = app
        self.wsgi = wsgi
        self.token = token
        self.settings = settings
        self.root = root
        self.mount = mount
        host = server.server_address[0]
        if ":" in host:
            host = f"[{host}]"
        self.url = f"http://{host}:{server.server_address[1]}/"
        self._stopped = False
        self._stop_lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def faults(self) -> Any:
        """The fault layer (its ``stats()`` count what was injected)."""
        return self.wsgi

    def stop(self) -> None:
        """Stop serving and close the socket; the mount syncer stops without flushing."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        if self.mount is not None:
            self.mount.stop()
        self._server.shutdown()
        self._server.server_close()
        close_connections(self._server)
        self._thread.join(timeout=10)
        self.app.close()

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorHandle(url={self.url!r}, root={str(self.root)!r})"


def start_emulator(
    root: str | os.PathLike,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    settings: EmulatorSettings | None = None,
    mount: str | os.PathLike | None = None,
    mount_lag: float = 2.0,
    mount_list_cap: int | None = None,
    allow_remote: bool = False,
) -> EmulatorHandle:
    """Serve a Drive v3 emulator storing its state under ``root``; ready when this returns.

    ``token`` is the bearer token every request must carry (random when not given).
    Only loopback addresses are served unless ``allow_remote=True``.
    """
    if not allow_remote and not _is_loopback(host):
        raise ValueError(
            f"refusing to serve the emulator on non-loopback host {host!r}; "
            "pass allow_remote=True (--allow-remote) to expose it on purpose"
        )
    root = Path(root)
    token = token or secrets.token_urlsafe(32)
    settings = settings or EmulatorSettings()
    app = DriveApp(root, settings, token=token)
    wsgi = FaultMiddleware(BatchMiddleware(app), settings, token=token)
    try:
        server = make_keepalive_server(host, port, wsgi)
    except BaseException:
        app.close()
        raise
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name="drive-emulator",
        daemon=True,
    )
    thread.start()
    simulator = None
    if mount is not None:
        simulator = MountSimulator(mount, app, token=token, lag=mount_lag, list_cap=mount_list_cap)
        try:
            simulator.start()
        except BaseException:
            server.shutdown()
            server.server_close()
            app.close()
            raise
    return EmulatorHandle(
        server=server,
        thread=thread,
        app=app,
        wsgi=wsgi,
        token=token,
        settings=settings,
        root=root,
        mount=simulator,
    )
