"""A loopback TCP proxy that cuts responses after a number of bytes: a dropped connection
mid-download, on a real socket, for the client library to meet as it would on a network."""

from __future__ import annotations

import socket
import threading


class CutProxy:
    """Forwards to ``upstream``; the first ``cuts`` connections whose response passes
    ``cut_after`` bytes are closed there."""

    def __init__(self, upstream_port: int, *, cut_after: int, cuts: int) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.cuts_left = cuts
        self.cut = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
        with self._lock:
            limit = self.cut_after if self.cuts_left > 0 else None
        sent = 0
        try:
            while data := upstream.recv(65536):
                if limit is not None and sent + len(data) > limit:
                    client.sendall(data[: limit - sent])
                    with self._lock:
                        self.cuts_left -= 1
                        self.cut += 1
                    break
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=2)


class RecordingProxy(CutProxy):
    """Forwards everything and keeps what the client sent (request lines and headers)."""

    def __init__(self, upstream_port: int) -> None:
        self.sent = bytearray()
        super().__init__(upstream_port, cut_after=0, cuts=0)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:  # type: ignore[override]
        try:
            while data := src.recv(65536):
                self.sent.extend(data)
                dst.sendall(data)
        except OSError:
            pass
