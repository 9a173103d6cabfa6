"""connect(): each way of choosing what to talk to, without ever reaching Google."""

from __future__ import annotations

import importlib
import json
import sys
import types

import google.auth
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2 import service_account

from colab_magics.drive import connect
from colab_magics.drive.connect import ENV_MOUNT, ENV_TOKEN, ENV_URL, SCOPES, scope_url
from colab_magics.drive.service import DRIVE_ROOT_URL

# The package exports the function ``connect``, which hides the module of the same name.
connect_module = importlib.import_module("colab_magics.drive.connect")

ENV = (ENV_URL, ENV_TOKEN, ENV_MOUNT, "GOOGLE_APPLICATION_CREDENTIALS", "XDG_DATA_HOME")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No Colab, no configured server, no application-default credentials."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setattr(connect_module, "on_colab", lambda: False)


@pytest.fixture
def key_file(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = tmp_path / "sa.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "p",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "bot@p.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    return path


def test_scopes():
    assert scope_url("file") == "https://www.googleapis.com/auth/drive.file"
    assert scope_url("drive") == scope_url("full") == "https://www.googleapis.com/auth/drive"
    with pytest.raises(ValueError):
        scope_url("everything")


def test_explicit_url_and_token(emulator):
    with connect(url=emulator.url, token=emulator.token, mount="/mnt/d") as client:
        assert client.root_url == emulator.url
        assert client.mount_root == "/mnt/d"
        client.upload(b"hi", "a.txt")
        assert client.read_bytes("/mnt/d/a.txt") == b"hi"
        assert emulator.token not in client.description


def test_env_url(emulator, monkeypatch):
    monkeypatch.setenv(ENV_URL, emulator.url)
    monkeypatch.setenv(ENV_TOKEN, emulator.token)
    monkeypatch.setenv(ENV_MOUNT, "/mnt/m")
    with connect() as client:
        assert emulator.url in client.description and client.mount_root == "/mnt/m"
        assert client.quota().usage == 0


def test_url_without_token_is_refused(emulator):
    with pytest.raises(ValueError, match="token"):
        connect(url=emulator.url)


@pytest.mark.parametrize(("scope", "url"), [("file", SCOPES["file"]), ("drive", SCOPES["drive"])])
def test_service_account_file_means_real_drive(key_file, scope, url):
    client = connect(credentials_file=key_file, scope=scope)
    assert isinstance(client.credentials, service_account.Credentials)
    assert client.credentials.scopes == [url]
    assert client.root_url == DRIVE_ROOT_URL
    assert not client.credentials.token  # nothing was requested


def test_application_default_credentials(key_file, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    client = connect()
    assert isinstance(client.credentials, service_account.Credentials)
    assert client.credentials.scopes == [SCOPES["file"]]
    assert client.root_url == DRIVE_ROOT_URL
    assert "application-default" in client.description


def test_colab(monkeypatch):
    calls = []
    auth = types.ModuleType("google.colab.auth")
    auth.authenticate_user = lambda: calls.append("authenticate_user")
    colab = types.ModuleType("google.colab")
    colab.auth = auth
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.auth", auth)
    monkeypatch.setattr(connect_module, "on_colab", lambda: True)
    creds = object()

    def default(scopes=None, **kw):
        calls.append(("default", tuple(scopes)))
        return creds, "project"

    monkeypatch.setattr(google.auth, "default", default)
    client = connect()
    assert calls == ["authenticate_user", ("default", (SCOPES["file"],))]
    assert client.credentials is creds
    assert client.root_url == DRIVE_ROOT_URL
    assert client.mount_root == "/content/drive/MyDrive"


def test_nothing_configured_starts_the_embedded_emulator(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    client = connect()
    try:
        assert client.description.startswith("Using the local Drive emulator at")
        assert "no Google account" in client.description
        assert str(tmp_path / "xdg" / "colab_magics" / "drive") in client.description
        client.upload(b"offline", "demo/x.txt")
        assert client.read_bytes("demo/x.txt") == b"offline"
    finally:
        client.close()
    # The data persist: a second start finds the file.
    again = connect()
    try:
        assert again.read_bytes("demo/x.txt") == b"offline"
    finally:
        again.close()


def test_embedded_emulator_with_a_simulated_mount(tmp_path):
    mount = tmp_path / "mnt"
    client = connect(data_dir=tmp_path / "data", mount=mount)
    try:
        assert client.mount_root == str(mount)
        assert client.emulator.mount is not None
        client.upload(b"via api", f"{mount}/m/x.txt")
        assert client.read_bytes("m/x.txt") == b"via api"
    finally:
        client.close()
