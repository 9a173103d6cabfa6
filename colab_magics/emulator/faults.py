"""Fault injection: a WSGI middleware that delays, fails and cuts requests.

It also serves the control endpoint under ``/_emulator/`` (not part of Drive), through which
tests and benchmarks read and change the settings and read what was injected, and calls an
in-process request observer (``on_request``) that may hold, drop or follow any Drive request.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from colab_magics.emulator.errors import DriveError, auth_error
from colab_magics.emulator.gate import token_ok
from colab_magics.emulator.observe import (  # DROP, RequestEvent: re-exported for callers
    DROP,
    Observer,
    RequestEvent,
    content_length,
    followed,
    make_event,
    read_body,
)
from colab_magics.emulator.settings import EmulatorSettings
from colab_magics.emulator.wire import READ_BLOCK

__all__ = ["CONTROL_PREFIX", "DROP", "FaultMiddleware", "RequestEvent", "validate_settings"]

CONTROL_PREFIX = "/_emulator/"
_PROBABILITIES = (
    "error_rate",
    "rate_limit_429",
    "rate_limit_403",
    "cut_rate",
    "error_after_rate",
    "short_page_rate",
)
_STAT_KEYS = (
    "requests",
    "delayed",
    "error_500",
    "error_503",
    "rate_limit_429",
    "rate_limit_403",
    "cut_request",
    "cut_response",
    "error_after",
)

StartResponse = Callable[..., Any]


class ConnectionCut(ConnectionAbortedError):
    """Raised inside the server after an injected cut; werkzeug drops such connections quietly."""


@dataclasses.dataclass(frozen=True)
class _Dice:
    """What one request gets: a delay and at most one fault."""

    delay: float
    fault: str | None
    which: float = 0.0


class FaultMiddleware:
    """Wraps a WSGI app; throws dice per request and injects latency, errors and cuts.

    The dice come from a ``random.Random`` seeded by ``settings.seed`` (reseeded whenever the
    seed setting changes), so a run with a seed injects the same faults in the same order.
    """

    def __init__(self, app: Callable, settings: EmulatorSettings, *, token: str) -> None:
        self.app = app
        self.settings = settings
        self.token = token
        self._lock = threading.Lock()
        self._seed = settings.seed
        self._rng, self._rng_after = _rngs(settings.seed)
        self._stats: dict[str, float] = dict.fromkeys(_STAT_KEYS, 0)
        self._observer: Observer | None = None

    def on_request(self, observer: Observer | None) -> None:
        """Call ``observer(event)`` before each Drive request is served (None: stop calling).

        It runs in the request's serving thread, so it can hold the request by not returning
        (other requests go on). Its answer decides what happens next: None serves the request;
        :data:`DROP` cuts the connection without serving it; a callable serves it and is then
        called with the response's status line (``"200 OK"``), once the response is sent, or
        with None when serving failed. Control requests (``/_emulator/``) are not observed.
        """
        self._observer = observer

    def reseed(self) -> None:
        """Restart the dice from ``settings.seed`` (also done when the seed value changes)."""
        with self._lock:
            self._seed = self.settings.seed
            self._rng, self._rng_after = _rngs(self._seed)

    # -- statistics -------------------------------------------------------------------------

    def stats(self) -> dict[str, float]:
        """Counts of requests seen and faults injected, by kind, since start or last reset."""
        with self._lock:
            return dict(self._stats)

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = dict.fromkeys(_STAT_KEYS, 0)

    def _count(self, key: str) -> None:
        with self._lock:
            self._stats[key] += 1

    # -- WSGI -------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(CONTROL_PREFIX):
            return self._control(environ, start_response)
        observer = self._observer
        if observer is None:
            return self._serve(environ, start_response)
        answer = observer(make_event(environ))
        if isinstance(answer, str) and answer == DROP:
            _abort(environ)
        if not callable(answer):
            return self._serve(environ, start_response)
        return followed(self._serve, environ, start_response, answer)

    def _serve(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        dice = self._throw()
        if dice.delay > 0:
            time.sleep(dice.delay)
        fault = dice.fault
        if fault in ("error_500", "error_503", "rate_limit_429", "rate_limit_403"):
            self._count(fault)
            _drain(environ)
            return _injected_error(fault, self.settings.retry_after).respond(start_response)
        if fault in ("error_after_500", "error_after_503"):
            self._count("error_after")
            _run_to_end(self.app, environ)
            return _injected_error("error_" + fault[-3:], 0).respond(start_response)
        if fault == "cut":
            length = content_length(environ)
            if length > 0:
                self._count("cut_request")
                _drain(environ, length // 2)
                _abort(environ)
            self._count("cut_response")
            return self._cut_response(environ, start_response)
        return self.app(environ, start_response)

    def part_app(self, app: Callable) -> Callable:
        """``app`` with this layer's error dice thrown again for each part of a batch.

        A part fails on its own, as on Drive: 500/503, 429, or a 403 rate limit (either of
        Drive's two reasons), or done and then answered 500/503. No delay and no cut: a part
        has no connection of its own.
        """

        def serve(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
            dice = self._throw()
            fault = dice.fault
            if fault in ("error_500", "error_503", "rate_limit_429"):
                self._count(fault)
                return _injected_error(fault, self.settings.retry_after).respond(start_response)
            if fault == "rate_limit_403":
                self._count(fault)
                return _part_rate_limit(dice.which).respond(start_response)
            if fault in ("error_after_500", "error_after_503"):
                self._count("error_after")
                _run_to_end(app, environ)
                return _injected_error("error_" + fault[-3:], 0).respond(start_response)
            return app(environ, start_response)

        return serve

    def _throw(self) -> _Dice:
        s = self.settings
        with self._lock:
            if s.seed != self._seed:
                self._seed = s.seed
                self._rng, self._rng_after = _rngs(s.seed)
            rng = self._rng
            # Always draw the same number of values, so one setting does not shift the others.
            jitter, error, which, r429, r403, cut = (rng.random() for _ in range(6))
            after = self._rng_after.random()
            self._stats["requests"] += 1
            delay = s.latency + jitter * s.jitter
            if delay > 0:
                self._stats["delayed"] += 1
        if error < s.error_rate:
            fault: str | None = "error_500" if which < 0.5 else "error_503"
        elif after < s.error_after_rate:
            fault = "error_after_500" if which < 0.5 else "error_after_503"
        elif r429 < s.rate_limit_429:
            fault = "rate_limit_429"
        elif r403 < s.rate_limit_403:
            fault = "rate_limit_403"
        elif cut < s.cut_rate:
            fault = "cut"
        else:
            fault = None
        return _Dice(delay, fault, which)

    def _cut_response(self, environ: dict, start_response: StartResponse) -> Iterator[bytes]:
        """Run the request, send the headers and about half the body, then drop the line."""
        captured: list[Any] = []
        written: list[bytes] = []

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured[:] = [status, headers]
            return written.append

        result = self.app(environ, capture)
        try:
            chunks = iter(result)
            first = next(chunks, b"")  # a lazy app calls start_response only when iterated
            status, headers = captured
            stream: Iterable[bytes] = itertools.chain(written, [first], chunks)
            length = _header_length(headers)
            if length is None:
                body = b"".join(stream)
                length, stream = len(body), [body]
            if length == 0:
                # Nothing to cut in half: the request took effect but its answer is lost.
                _abort(environ)
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            start_response(status, [*headers, ("Content-Length", str(length))])
            left = length // 2
            for chunk in stream:
                if left <= 0:
                    break
                yield chunk[:left]
                left -= len(chunk)
            _abort(environ)
        finally:
            if hasattr(result, "close"):
                result.close()

    # -- control endpoint -------------------------------------------------------------------

    def _control(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if not token_ok(environ.get("HTTP_AUTHORIZATION", ""), self.token):
            return auth_error().respond(start_response)
        body = read_body(environ, content_length(environ))
        path = environ["PATH_INFO"][len(CONTROL_PREFIX) :].rstrip("/")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "settings" and method == "GET":
            return _json(start_response, self.settings.as_dict())
        if path == "settings" and method in ("PATCH", "POST", "PUT"):
            try:
                changes = json.loads(body or b"null")
                changes = validate_settings(changes)
                self.settings.update(changes)
                if "seed" in changes:
                    self.reseed()
            except (ValueError, KeyError, TypeError) as e:
                message = e.args[0] if e.args else str(e)
                return DriveError(400, "badRequest", str(message)).respond(start_response)
            return _json(start_response, self.settings.as_dict())
        if path == "stats" and method == "GET":
            return _json(start_response, self.stats())
        if path == "stats/reset" and method == "POST":
            self.reset_stats()
            return _json(start_response, self.stats())
        missing = DriveError(404, "notFound", f"No control endpoint {method} {path}.")
        return missing.respond(start_response)


def validate_settings(changes: Any) -> dict[str, Any]:
    """Check a settings patch: known names, values of the right type and range.

    Raises ``KeyError`` for an unknown name and ``ValueError`` for a bad value.
    """
    if not isinstance(changes, dict):
        raise ValueError("settings must be a JSON object")
    types = {f.name: str(f.type) for f in dataclasses.fields(EmulatorSettings)}
    checked: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in types:
            raise KeyError(f"unknown emulator setting: {name}")
        kind = types[name]
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"setting {name} must be true or false")
        elif value is None:
            if "None" not in kind:
                raise ValueError(f"setting {name} cannot be null")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"setting {name} must be a number")
        elif "float" not in kind and not isinstance(value, int):
            raise ValueError(f"setting {name} must be an integer")
        elif name != "seed" and value < 0:
            raise ValueError(f"setting {name} must not be negative")
        elif name in _PROBABILITIES and value > 1:
            raise ValueError(f"setting {name} is a probability, between 0 and 1")
        checked[name] = float(value) if "float" in kind and value is not None else value
    return checked


def _rngs(seed: int | None) -> tuple[random.Random, random.Random]:
    """The main dice and those of ``error_after_rate`` (apart, so old seeds replay as before)."""
    return random.Random(seed), random.Random(None if seed is None else f"after:{seed}")


def _run_to_end(app: Callable, environ: dict) -> None:
    """Serve the request in full and throw the answer away."""

    def start(status: str, headers: list, exc_info: Any = None) -> Callable:
        return lambda data: None

    result = app(environ, start)
    try:
        for _ in result:
            pass
    finally:
        if hasattr(result, "close"):
            result.close()


def _part_rate_limit(which: float) -> DriveError:
    if which < 0.5:
        return DriveError(403, "rateLimitExceeded", "Rate Limit Exceeded")
    return DriveError(403, "userRateLimitExceeded", "User Rate Limit Exceeded")


def _injected_error(kind: str, retry_after: float) -> DriveError:
    if kind == "error_500":
        return DriveError(500, "backendError", "Backend Error")
    if kind == "error_503":
        return DriveError(503, "backendError", "Backend Error")
    if kind == "rate_limit_429":
        seconds = max(0, math.ceil(retry_after))  # Retry-After takes whole seconds
        return DriveError(
            429,
            "rateLimitExceeded",
            "Rate Limit Exceeded",
            headers={"Retry-After": str(seconds)},
        )
    return DriveError(403, "userRateLimitExceeded", "User Rate Limit Exceeded")


def _json(start_response: StartResponse, payload: Any) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        "200 OK",
        [("Content-Type", "application/json; charset=UTF-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _drain(environ: dict, limit: int | None = None) -> None:
    """Consume (up to ``limit`` bytes of) the request body, discarding it.

    Done before an early answer, so that the connection stays in step with the client.
    """
    n = content_length(environ) if limit is None else limit
    stream = environ.get("wsgi.input")
    while n > 0 and stream is not None:
        data = stream.read(min(n, READ_BLOCK))
        if not data:
            break
        n -= len(data)


def _header_length(headers: list[tuple[str, str]]) -> int | None:
    for name, value in headers:
        if name.lower() == "content-length" and value.strip().isdigit():
            return int(value)
    return None


def _abort(environ: dict) -> None:
    """Drop the client's TCP connection at once (RST), then tell the server it is gone."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        _reset(sock)
        # Empty the server's read buffer (the socket now reads as EOF), so its handler finds
        # no leftover body bytes to parse as a next request.
        stream = environ.get("wsgi.input")
        try:
            while stream is not None and stream.read(READ_BLOCK):
                pass
        except (OSError, ValueError):
            pass
    raise ConnectionCut("connection cut by the emulator's fault injection")


def _reset(sock: socket.socket) -> None:
    # SO_LINGER 0 makes the final close send RST, so the client fails now rather than
    # waiting on a half-open connection.
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        # Put a dead local socket in place of the connection's descriptor: this closes the TCP
        # connection now, while werkzeug's handler keeps a valid descriptor that reads as EOF,
        # so it finishes quietly instead of logging a traceback for a closed socket.
        a, b = socket.socketpair()
        b.close()
        try:
            os.dup2(a.fileno(), sock.fileno())
        finally:
            a.close()
    except (OSError, AttributeError, ValueError):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
