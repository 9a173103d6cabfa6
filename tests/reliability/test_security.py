"""The security promises, checked on the whole: the token never leaks, the emulator is closed
and local, archives cannot escape, tampered checkpoints are never deserialized.
"""

from __future__ import annotations

import base64
import email.parser
import io
import json
import logging
import os
import pickle
import re
import secrets
import zipfile
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import torch
from IPython.core.error import UsageError

from colab_magics.demo import notebook as nb
from colab_magics.demo.kernel import DemoKernel
from colab_magics.drive import connect
from colab_magics.emulator import start_emulator
from colab_magics.emulator.app import _RULES
from colab_magics.emulator.faults import CONTROL_PREFIX
from tests.checkpoint.planting import Plant, genuine_blobs, plant, values_json
from tests.conftest import make_service
from tests.emulator.drive_helpers import raw
from tests.reliability.conftest import newest_manifest, replace_on_drive, run_cell

# Recognizable, and with characters that URL-encoding and base64 both change.
TOKEN = f"cmTOKEN{secrets.token_hex(8)}-x.y_z~w+v/u=="


def token_forms(token: str) -> dict[str, bytes]:
    """How the token could appear in bytes: as is, URL-encoded, JSON-escaped, hex, and base64
    (standard and URL-safe) at each of the three alignments it could have inside a longer
    base64 text (the characters that mix in a neighbour's bits are left out)."""
    raw = token.encode()
    forms = {
        "raw": raw,
        "url": quote(token, safe="").encode(),
        "url-plus": quote_plus(token).encode(),
        "json": json.dumps(token)[1:-1].encode(),
        "hex": raw.hex().encode(),
    }
    for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
        for pad in range(3):
            encoded = encode(b"\0" * pad + raw)
            forms[f"{name}+{pad}"] = encoded[4:-4]
    return forms


def find_token(
    token: str, texts: dict[str, str | bytes], roots: list[Path], allowed: tuple[Path, ...] = ()
) -> list[str]:
    """Where any form of ``token`` occurs: ``"place: form"`` for each named text and each file
    under ``roots`` (except the ``allowed`` files, which hold it on purpose)."""
    forms = token_forms(token)
    places = {name: t.encode() if isinstance(t, str) else t for name, t in texts.items()}
    for root in roots:
        for folder, _, files in os.walk(root):
            for name in files:
                path = os.path.join(folder, name)
                if Path(path) in allowed or os.path.islink(path):
                    continue
                with open(path, "rb") as f:
                    places[path] = f.read()
    return [f"{place}: {form}" for place, data in places.items()
            for form, needle in forms.items() if needle in data]  # fmt: skip


def test_the_scan_finds_every_form_it_looks_for(tmp_path):
    for name, needle in token_forms(TOKEN).items():
        (tmp_path / f"planted-{name}").write_bytes(b"<" + needle + b">")
    (tmp_path / "inside-base64").write_bytes(base64.b64encode(f"Bearer {TOKEN}".encode()))
    found = find_token(TOKEN, {}, [tmp_path])
    assert len(found) >= len(token_forms(TOKEN)) + 1
    assert any("inside-base64" in f for f in found)


@pytest.fixture
def emulator(tmp_path):
    """This module's emulator requires the recognizable token."""
    handle = start_emulator(tmp_path / "drive", token=TOKEN)
    try:
        yield handle
    finally:
        handle.stop()


# -- the token appears nowhere ---------------------------------------------------------------

SETUP = """
import torch
torch.manual_seed(0)
model = torch.nn.Linear(4, 2)
opt = torch.optim.Adam(model.parameters())
seen = set()
os.makedirs("data/sub", exist_ok=True)
for i in range(3):
    with open(f"data/sub/f{i}.txt", "w") as f:
        f.write("x" * 1000 * (i + 1))
with open("big.bin", "wb") as f:
    f.write(os.urandom(200_000))
"""

TRAIN = """%%checkpointed RUN --save model,opt,seen --every 2
for step in ckpt.range(6):
    loss = model(torch.ones(3, 4)).pow(2).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    seen.add(step)
"""


def _zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _session(emulator, workdir: Path):
    """The cells of a realistic session, with the Drive-side changes that force error paths
    between them (callables run in this process, where the emulator is)."""
    (workdir / "wrong-token").write_text("not-the-right-one")
    (workdir / "a.zip").write_bytes(_zip_bytes({"inside/x.txt": b"x"}))

    def faults_on():
        emulator.settings.update({"error_rate": 0.2, "rate_limit_429": 0.1, "retry_after": 0,
                                  "seed": 11})  # fmt: skip

    def drive_full():
        emulator.settings.faults_off()
        emulator.settings.update({"quota_bytes": emulator.app.store.usage()[0]})

    def drive_roomy():
        emulator.settings.update({"quota_bytes": None})

    return [
        "import os",
        SETUP,
        "%drive_sync push data datasets/d",
        "%drive_sync pull datasets/d restored",
        "%drive_sync push a.zip archives/",
        "%drive_sync pull archives/a.zip unpacked --extract",
        TRAIN.replace("RUN", "secure"),
        "%drive_status",
        "%drive_quota",
        "%drive_flush",
        "%drive_guard status",
        faults_on,
        "%drive_sync push data datasets/faulty",
        drive_full,
        "%drive_sync push big.bin datasets/big.bin",
        TRAIN.replace("RUN", "secure-full"),
        drive_roomy,
        "%drive_sync pull no/such/folder here",
        "%drive_sync pull colab_magics/checkpoints/secure checkpoint-copy",
    ]


def test_no_token_in_a_shell_session_its_logs_or_its_files(
    shell, emulator, connected, tmp_path, capsys, caplog
):
    caplog.set_level(logging.DEBUG)  # every library's debug log too
    work = Path.cwd()
    cells = _session(emulator, work)
    cells += [
        f"%drive_connect --url {emulator.url} --token-file wrong-token",
        "%drive_quota",  # refused: the wrong token
        f"%drive_connect --url {emulator.url} --token-file {tmp_path / 'token'}",
    ]
    errors = []
    for cell in cells:
        if callable(cell):
            cell()
            continue
        error = run_cell(shell, cell)
        if error is not None:
            errors.append(f"{type(error).__name__}: {error}")
    out, err = capsys.readouterr()
    text = out + err + "\n".join(errors)

    # The session did what it should, errors included: the scan below is not of nothing.
    assert "uploaded 3" in text and "Drive is full" in text and "refused the credentials" in text
    assert "does not exist on Drive" in text and re.search(r"\d+ retr(y|ies)\b", text)
    assert (work / "checkpoint-copy").is_dir() and (work / "unpacked/inside/x.txt").is_file()
    assert len(errors) >= 3
    leaks = find_token(
        TOKEN,
        {"stdout": out, "stderr": err, "errors": "\n".join(errors), "log": caplog.text},
        [tmp_path],  # work dir, staging, caches, checkpoint copy, and the emulator's files
        allowed=(tmp_path / "token",),  # the file %drive_connect --token-file reads
    )
    assert not leaks, leaks


@pytest.mark.slow
def test_no_token_in_a_notebook_session_its_kernel_log_or_its_files(emulator, tmp_path):
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    env = {
        "COLAB_MAGICS_DRIVE_URL": emulator.url,
        "COLAB_MAGICS_DRIVE_TOKEN": TOKEN,
        "COLAB_MAGICS_STAGING": str(runtime / "staging"),
        "XDG_CACHE_HOME": str(runtime / "cache"),
    }
    cells = ["%load_ext colab_magics", "%drive_connect", *_session(emulator, runtime)]
    cells += [
        f"%drive_connect --url {emulator.url} --token-file wrong-token",
        "%drive_quota",
        "%drive_connect",
        "%%checkpointed boom --save model\nraise RuntimeError('a failing training cell')",
    ]
    kernel = DemoKernel(str(runtime), env, log=str(tmp_path / "kernel.log"))
    results, sources = [], []
    try:
        for cell in cells:
            if callable(cell):
                cell()
                continue
            executed = kernel.run(cell, timeout=120)
            results.append((executed.outputs, executed.execution_count))
            sources.append(cell)
        widgets = kernel.widgets.metadata()
    finally:
        kernel.close()
    document = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": s, "outputs": [],
             "execution_count": None} for s in sources
        ],
    }  # fmt: skip
    executed_path = tmp_path / "executed.ipynb"
    nb.save(nb.with_outputs(document, results, widgets), executed_path)

    shown = "\n".join(nb.output_text(o) for o in nb.outputs_of(nb.load(executed_path)))
    assert "Using the Drive server at" in shown and "uploaded 3" in shown
    assert "Drive is full" in shown and "refused the credentials" in shown
    assert "does not exist on Drive" in shown and "a failing training cell" in shown
    assert widgets is not None  # the panels' state is in the notebook too
    leaks = find_token(TOKEN, {}, [tmp_path])  # notebook, kernel log, runtime disk, Drive
    assert not leaks, leaks


# -- the emulator: closed to requests without the token, and local ---------------------------


def _endpoints(file_id: str) -> list[tuple[str, str]]:
    """Every route the Drive app serves (so a new one is covered too), and the control ones."""
    routes = [
        (method, path.replace("<file_id>", file_id))
        for path, methods, _ in _RULES
        for method in methods
    ]
    routes.append(("POST", "/upload/drive/v3/files?uploadType=media"))
    routes.append(("PUT", "/upload/drive/v3/files?uploadType=resumable&upload_id=SESSION"))
    for method, name in (("GET", "settings"), ("PATCH", "settings"), ("GET", "stats"),
                         ("POST", "stats/reset")):  # fmt: skip
        routes.append((method, CONTROL_PREFIX + name))
    return routes


WRONG_AUTH = {
    "none": {},
    "wrong-token": {"Authorization": "Bearer not-the-token"},
    "token-as-basic": {"Authorization": f"Basic {TOKEN}"},
    "token-prefix": {"Authorization": f"Bearer {TOKEN[:-3]}"},
}


@pytest.mark.parametrize("auth", list(WRONG_AUTH), ids=list(WRONG_AUTH))
def test_every_endpoint_refuses_a_request_without_the_token(emulator, auth):
    drive = make_service(emulator)
    kept = drive.files().create(body={"name": "kept.txt"}, fields="id").execute()["id"]
    let_through = []
    for method, path in _endpoints(kept):
        body = b'{"latency": 5, "name": "intruder"}' if method != "GET" else b""
        status, _, answer = raw(
            emulator, method, path, body=body, headers=WRONG_AUTH[auth], token=""
        )
        if status != 401 or TOKEN.encode() in answer or kept.encode() in answer:
            let_through.append(f"{method} {path}: {status} {answer[:80]!r}")
    assert not let_through, let_through
    # A batch answers per part, as Drive does: every part without the token gets 401.
    boundary = "b0undary"
    part = (
        "Content-Type: application/http\r\nContent-ID: <p1>\r\n\r\n"
        f"GET /drive/v3/files/{kept} HTTP/1.1\r\n\r\n"
    )
    status, headers, answer = raw(
        emulator, "POST", "/batch/drive/v3",
        body=f"--{boundary}\r\n{part}\r\n--{boundary}--\r\n".encode(),
        headers={"Content-Type": f"multipart/mixed; boundary={boundary}", **WRONG_AUTH[auth]},
        token="",
    )  # fmt: skip
    assert status == 401 or _batch_statuses(answer, headers["content-type"]) == [401]
    # Nothing was changed or created by any of those requests.
    assert emulator.settings.latency == 0
    listed = drive.files().list(fields="files(name)").execute()["files"]
    assert [f["name"] for f in listed] == ["kept.txt"]


def _batch_statuses(data: bytes, ctype: str) -> list[int]:
    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + data
    )
    return [int(part.get_payload().split()[1]) for part in message.get_payload()]


def _listening_addresses(port: int) -> list[str]:
    """Local addresses of the listening TCP sockets on ``port`` (from /proc/net/tcp{,6})."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.append(address)
    return found


def test_the_emulator_listens_on_loopback_only_and_refuses_anything_else(emulator, tmp_path):
    assert _listening_addresses(emulator.port) == ["0100007F"]  # 127.0.0.1, little-endian
    for host in ("0.0.0.0", "::", "", "192.168.1.10"):
        with pytest.raises(ValueError, match="non-loopback"):
            start_emulator(tmp_path / "other", host=host)


# -- archives cannot write outside the target ------------------------------------------------


@pytest.mark.parametrize("bad", ["dot-dot", "absolute", "symlink-out"])
def test_pull_extract_refuses_entries_that_escape(shell, connected, tmp_path, bad):
    outside = tmp_path / "outside.txt"
    zip_buf = io.BytesIO()
    with zipfile.ZipFile(zip_buf, "w") as zf:
        zf.writestr("ok/a.txt", "fine")
        if bad == "dot-dot":
            zf.writestr("../escape.txt", "escaped")
        elif bad == "absolute":
            zf.writestr(zipfile.ZipInfo(str(outside)), "escaped")
        else:
            link = zipfile.ZipInfo("ok/link")
            link.external_attr = (0o120777) << 16  # a symlink entry
            zf.writestr(link, "../../../outside.txt")
        zf.writestr("ok/z.txt", "fine")
    connected.upload(zip_buf.getvalue(), "archives/bad.zip")
    work = Path.cwd()
    before = set(work.rglob("*"))

    error = run_cell(shell, "%drive_sync pull archives/bad.zip out --extract")
    assert isinstance(error, UsageError)
    message = str(error)
    assert "Refusing archive entry" in message and "\n" not in message
    assert not outside.exists() and not (work / "escape.txt").exists()
    new = set(work.rglob("*")) - before
    assert new == {work / "out"} and not (work / "out").is_symlink()  # nothing written at all


# -- tampered checkpoints are never deserialized ---------------------------------------------


class _Plant:
    """Unpickling this creates ``marker``: proof that a payload was deserialized."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


PICKLED = """%%checkpointed pickled --save model,seen --every 100 --keep 5
for step in ckpt.range(STEPS):
    with torch.no_grad():
        model.weight += 1
    seen.add(step)
"""


def _pickle_payload(marker: Path) -> bytes:
    payload = pickle.dumps({"seen": _Plant(str(marker))}, protocol=4)
    pickle.loads(payload)  # the payload is live: loading it does create the marker
    assert marker.is_dir()
    marker.rmdir()
    return payload


def _torch_payload(marker: Path) -> bytes:
    buf = io.BytesIO()
    torch.save({"model": _Plant(str(marker))}, buf)
    torch.load(io.BytesIO(buf.getvalue()), weights_only=False)  # live without weights_only
    assert marker.is_dir()
    marker.rmdir()
    return buf.getvalue()


@pytest.mark.parametrize(
    ("blob", "manifest_agrees"),
    [("objects.pkl", False), ("torch.pt", True)],
    ids=["pickle-with-wrong-md5", "torch-non-tensor-with-matching-md5"],
)
def test_a_planted_payload_is_never_deserialized(
    shell, emulator, connected, tmp_path, capsys, blob, manifest_agrees
):
    marker = tmp_path / "marker"
    setup = "import torch\nmodel = torch.nn.Linear(2, 2)\nseen = set()\n"
    assert run_cell(shell, setup) is None
    assert run_cell(shell, PICKLED.replace("STEPS", "2")) is None
    assert run_cell(shell, PICKLED.replace("STEPS", "4")) is None
    folder = "colab_magics/checkpoints/pickled"
    manifest_file = newest_manifest(connected, folder)
    manifest = json.loads(connected.read_bytes(manifest_file))
    entry = next(b for b in manifest["blobs"] if b["name"] == blob)
    payload = (_torch_payload if blob == "torch.pt" else _pickle_payload)(marker)
    replace_on_drive(emulator, entry["file_id"], payload)
    if manifest_agrees:  # whoever planted it also rewrote the manifest to match
        entry["md5"] = connected.file(entry["file_id"]).md5
        entry["size"] = len(payload)
        replace_on_drive(emulator, manifest_file.id, json.dumps(manifest).encode())
    capsys.readouterr()

    assert run_cell(shell, setup) is None  # a fresh runtime
    assert run_cell(shell, PICKLED.replace("STEPS", "4")) is None
    out = capsys.readouterr().out
    assert not marker.exists()
    ckpt = shell.user_ns["ckpt"]
    assert ckpt.restored_from.step == 2
    assert f"skipped {manifest_file.name}: {blob}" in ckpt.progress.get("message")
    assert f"skipped {manifest_file.name}: {blob}" in out
    assert shell.user_ns["seen"] == {0, 1, 2, 3}


SHARED = """%%checkpointed shared --save model,arr --to shared-runs/exp --every 100
for step in ckpt.range(STEPS):
    arr += 1
"""


@pytest.mark.parametrize(
    "planted_as", ["objects.pkl-for-an-array", "absolute-name", "dot-dot-name"]
)
def test_a_checkpoint_another_writer_adds_runs_no_code_and_writes_nowhere(
    shell, emulator, connected, tmp_path, capsys, planted_as
):
    """A collaborator who can write the shared ``--to`` folder adds a newer checkpoint with
    md5s of its own: nothing in it is unpickled or written outside staging, and the run
    resumes from its own newest checkpoint."""
    setup = "import numpy as np, torch\nmodel = torch.nn.Linear(2, 2)\narr = np.zeros(3)\n"
    assert run_cell(shell, setup) is None
    assert run_cell(shell, SHARED.replace("STEPS", "2")) is None
    folder, marker, escaped = "shared-runs/exp", tmp_path / "marker", tmp_path / "escaped.bin"
    blobs = genuine_blobs(connected, folder)
    if planted_as == "objects.pkl-for-an-array":
        index = json.loads(blobs["values.json"])
        entries = [e for e in index["entries"] if e["name"] != "arr"]
        entries.append({"name": "arr", "kind": "array", "blob": "objects.pkl"})
        blobs["values.json"] = values_json(entries, index["values"])
        blobs["objects.pkl"] = pickle.dumps({"arr": Plant(str(marker))}, protocol=4)
    elif planted_as == "absolute-name":
        blobs[str(escaped)] = b"written by the other writer"
    else:  # staging is tmp_path/staging/shared/restore/TAG
        blobs["../../../../escaped.bin"] = b"written by the other writer"
    other = connect(url=emulator.url, token=emulator.token)
    try:
        planted = plant(other, folder, "shared", blobs)
    finally:
        other.close()
    capsys.readouterr()

    assert run_cell(shell, setup) is None  # a fresh runtime
    assert run_cell(shell, SHARED.replace("STEPS", "4")) is None
    out = capsys.readouterr().out
    assert not marker.exists() and not escaped.exists()
    assert shell.user_ns["ckpt"].restored_from.step == 2
    assert f"skipped {planted}: " in out
    assert list(shell.user_ns["arr"]) == [4.0, 4.0, 4.0]
