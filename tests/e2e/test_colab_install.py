"""The wheel ``./dev wheel`` builds installs on Colab's pinned stack and changes none of it.

Colab has IPython, ipykernel, ipywidgets and the Google client libraries imported before the
first cell; an install that upgrades one of them makes pip ask for a runtime restart. pip's
own report (``pip install --dry-run --report``, pip 22.2+) says what an install would change,
checked here against a venv that holds Colab's pins (ci/colab-constraints.txt): the one this
suite runs in, ``$COLAB_MAGICS_COLAB_VENV`` or ``.venv-colab`` (which ``./dev test`` makes).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLAB_PACKAGES = (
    "ipython",
    "ipykernel",
    "ipywidgets",
    "google-auth",
    "google-api-python-client",
    "httplib2",
)


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "ci" / "colab-constraints.txt").read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if version:
            pins[_name(name)] = version.strip()
    return pins


# The environment as installed: a PYTHONPATH (this checkout, for the tests' kernels) would add
# the checkout's own metadata to what pip sees as installed.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _installed(python: str) -> dict[str, str]:
    out = subprocess.run(
        [python, "-c", "import importlib.metadata as m, json; print(json.dumps("
         "{d.metadata['Name']: d.version for d in m.distributions()}))"],
        check=True, capture_output=True, text=True, env=CLEAN_ENV,
    ).stdout  # fmt: skip
    return {_name(k): v for k, v in json.loads(out).items()}


def _colab_python() -> tuple[str, dict[str, str]] | None:
    """A Python whose environment holds every pin of the Colab packages, and what it holds."""
    pins = {n: v for n, v in _pins().items() if n in COLAB_PACKAGES}
    candidates = [sys.executable]
    for venv in (os.environ.get("COLAB_MAGICS_COLAB_VENV"), ROOT / ".venv-colab"):
        if venv:
            candidates.append(str(Path(venv, "bin", "python")))
    for python in candidates:
        if os.path.exists(python):
            installed = _installed(python)
            if all(installed.get(n) == v for n, v in pins.items()):
                return python, installed
    return None


def test_the_constraints_pin_every_colab_package():
    assert set(COLAB_PACKAGES) <= set(_pins())


@pytest.mark.slow
def test_installing_the_wheel_changes_none_of_colabs_packages(tmp_path):
    found = _colab_python()
    if found is None:
        pytest.skip("no venv with Colab's pinned stack here; `./dev test` makes .venv-colab")
    python, installed = found
    dist = tmp_path / "dist"
    built = subprocess.run(
        [str(ROOT / "dev"), "wheel"],
        env={**os.environ, "PYTHON": sys.executable, "COLAB_MAGICS_DIST": str(dist)},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = dist.glob("colab_magics-*-py3-none-any.whl")
    report_file = tmp_path / "report.json"
    subprocess.run(
        [python, "-m", "pip", "install", "--dry-run", "--quiet", "--disable-pip-version-check",
         "--report", str(report_file), str(wheel)],
        check=True, capture_output=True, text=True, timeout=600, env=CLEAN_ENV,
    )  # fmt: skip
    report = json.loads(report_file.read_text())
    would_install = {_name(i["metadata"]["name"]): i["metadata"]["version"]
                     for i in report["install"]}  # fmt: skip
    assert "colab-magics" in would_install  # the wheel's requirements were resolved
    changed = {
        name: f"{installed[name]} -> {would_install[name]}"
        for name in COLAB_PACKAGES
        if name in would_install
    }
    assert changed == {}
