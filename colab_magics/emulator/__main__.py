"""``python -m colab_magics.emulator --root DIR``: serve the Drive v3 emulator until stopped.

The first line on stdout is the base URL, printed once the server accepts requests. A token
generated here is written to ``ROOT/token`` (mode 0600), never printed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading
import warnings
from pathlib import Path

from colab_magics.emulator.server import remote_warning, start_emulator
from colab_magics.emulator.settings import EmulatorSettings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m colab_magics.emulator",
        description="A local Google Drive v3 server for tests, demos and offline use.",
    )
    p.add_argument("--root", required=True, type=Path, help="folder holding the Drive's state")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    p.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    p.add_argument("--token", help="bearer token to require (default: random, in ROOT/token)")
    p.add_argument("--quota-bytes", type=int, help="storage limit in bytes (default: none)")
    p.add_argument("--listing-lag", type=float, default=0.0, help="seconds before files list")
    p.add_argument("--mount", type=Path, help="folder to run a simulated Colab mount in")
    p.add_argument(
        "--mount-lag", type=float, default=2.0, help="seconds before a mount write syncs"
    )
    p.add_argument("--mount-list-cap", type=int, help="children of a folder the mount shows")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    p.add_argument("--error-rate", type=float, default=0.0, help="probability of a 500/503")
    p.add_argument("--rate-429", type=float, default=0.0, help="probability of a 429")
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of injected 429s")
    p.add_argument("--rate-403", type=float, default=0.0, help="probability of a 403 rate limit")
    p.add_argument("--cut-rate", type=float, default=0.0, help="probability of a cut connection")
    p.add_argument(
        "--error-after-rate",
        type=float,
        default=0.0,
        help="probability of doing a request's work, then answering 500/503",
    )
    p.add_argument("--seed", type=int, help="seed for the fault dice")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    return p


def _write_token(root: Path, token: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_CREAT
    return path


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = EmulatorSettings(
        quota_bytes=args.quota_bytes,
        listing_lag=args.listing_lag,
        latency=args.latency,
        error_rate=args.error_rate,
        rate_limit_429=args.rate_429,
        retry_after=args.retry_after,
        rate_limit_403=args.rate_403,
        cut_rate=args.cut_rate,
        error_after_rate=args.error_after_rate,
        seed=args.seed,
    )
    # The token file exists before the URL is printed: whoever reads the URL can read it.
    token = args.token or secrets.token_urlsafe(32)
    if args.token is None:
        token_path = _write_token(args.root, token)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    warning = remote_warning(args.host) if args.allow_remote else None
    if warning is not None:
        print(f"emulator: WARNING: {warning}", file=sys.stderr, flush=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # said once, above
            handle = start_emulator(
                args.root,
                host=args.host,
                port=args.port,
                token=token,
                settings=settings,
                mount=args.mount,
                mount_lag=args.mount_lag,
                mount_list_cap=args.mount_list_cap,
                allow_remote=args.allow_remote,
            )
    except (ValueError, OSError) as e:
        print(f"emulator: {e}", file=sys.stderr)
        return 2
    try:
        print(handle.url, flush=True)
        if args.token is None:
            print(f"emulator: bearer token written to {token_path}", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        handle.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
