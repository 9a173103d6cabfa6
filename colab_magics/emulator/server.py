"""Start the emulator in-process: the Drive app behind batch and fault layers, on loopback."""

from __future__ import annotations

import ipaddress
import os
import secrets
import threading
import warnings
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer

from colab_magics.emulator.app import DriveApp
from colab_magics.emulator.batch import BatchMiddleware
from colab_magics.emulator.faults import FaultMiddleware
from colab_magics.emulator.gate import RequestGate
from colab_magics.emulator.httpserver import (
    MAX_IDLE_CONNECTIONS,
    close_connections,
    make_keepalive_server,
)
from colab_magics.emulator.mount import MountSimulator
from colab_magics.emulator.settings import EmulatorSettings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def remote_warning(host: str) -> str | None:
    """What to tell the user before serving on ``host``: None on loopback."""
    if _is_loopback(host):
        return None
    return (
        f"serving on {host!r} over plain HTTP: the bearer token and every file travel "
        "unencrypted, readable by anyone on the network path; use it on a trusted network only"
    )


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
    max_idle_connections: int = MAX_IDLE_CONNECTIONS,
) -> EmulatorHandle:
    """Serve a Drive v3 emulator storing its state under ``root``; ready when this returns.

    ``token`` is the bearer token every request must carry (random when not given).
    Only loopback addresses are served unless ``allow_remote=True``, which warns
    (``RuntimeWarning``) that the token then crosses the network in clear text.
    ``max_idle_connections`` caps connections waiting for a request; the oldest go first.
    """
    warning = remote_warning(host)
    if warning is not None:
        if not allow_remote:
            raise ValueError(
                f"refusing to serve the emulator on non-loopback host {host!r}; "
                "pass allow_remote=True (--allow-remote) to expose it on purpose"
            )
        warnings.warn(warning, RuntimeWarning, stacklevel=2)
    root = Path(root)
    token = token or secrets.token_urlsafe(32)
    settings = settings or EmulatorSettings()
    app = DriveApp(root, settings, token=token)
    batch = BatchMiddleware(app)
    faults = FaultMiddleware(batch, settings, token=token)
    batch.part_app = faults.part_app(app)
    try:
        server = make_keepalive_server(
            host, port, RequestGate(faults, token=token), max_idle=max_idle_connections
        )
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
        wsgi=faults,
        token=token,
        settings=settings,
        root=root,
        mount=simulator,
    )
