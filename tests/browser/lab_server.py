"""JupyterLab on loopback in its own process, with throwaway config, settings and workspaces."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# User settings for this server only, as JupyterLab reads them from its settings folder.
LAB_SETTINGS = {
    # Every cell stays in the DOM, so panels scrolled out of view can still be read.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    # No news or update checks (there is no network) and no toast over the screenshots.
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """``python -m jupyterlab`` serving ``root`` on 127.0.0.1; its kernels inherit ``env``.

    Everything it writes besides ``root`` (config, settings, workspaces, the kernels' IPython
    profile) goes under ``home``; its output and the kernels' go to ``log``.
    """

    def __init__(self, root: Path, home: Path, log: Path, env: dict[str, str]) -> None:
        self.root = root
        self.log = log
        self.token = secrets.token_urlsafe(24)
        self.port = _free_port()
        dirs = {
            "JUPYTER_CONFIG_DIR": home / "config",
            "JUPYTER_DATA_DIR": home / "data",  # no user kernelspec shadows this venv's python3
            "JUPYTER_RUNTIME_DIR": home / "runtime",
            "JUPYTERLAB_SETTINGS_DIR": home / "settings",
            "JUPYTERLAB_WORKSPACES_DIR": home / "workspaces",
            "IPYTHONDIR": home / "ipython",
        }
        for name, settings in LAB_SETTINGS.items():
            path = dirs["JUPYTERLAB_SETTINGS_DIR"] / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(settings))
        self.env = {
            **os.environ,
            **{name: str(path) for name, path in dirs.items()},
            "JUPYTER_TOKEN": self.token,  # not on the command line, where `ps` would show it
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def start(self, timeout: float = 90) -> None:
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.terminals_enabled=False",
            "--allow-root",  # CI runs as root
            # Nothing that would reach for the network: news, and the extension manager's PyPI.
            "--LabApp.news_url=None",
            "--LabApp.extension_manager=readonly",
        ]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.root
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}: {self.log}")
            try:
                self._request("GET", "api/status", timeout=2)
                return
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"JupyterLab not up after {timeout:.0f} s: {self.log}"
                    ) from exc
                time.sleep(0.25)

    def stop(self, timeout: float = 30) -> None:
        """Shut down through the API (which stops the kernels too), then by signal if need be."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self._request("POST", "api/shutdown", timeout=5)
        except OSError:
            pass
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _request(self, method: str, path: str, timeout: float) -> bytes:
        request = urllib.request.Request(
            self.url(path), method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()

    def __enter__(self) -> JupyterLab:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
