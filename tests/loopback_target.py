"""A loopback HTTP server for egress tests: records what reaches it, echoes, redirects, floods."""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

GIGABYTE = 1 << 30
CHUNK = 1 << 16


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _State:
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.state.lock:
            self.server.state.received.append(Received(self.command, self.path, dict(self.headers), body))
        route = urlsplit(self.path)
        if route.path == "/redirect":
            self._reply(302, b"", {"Location": parse_qs(route.query)["to"][0]})
        elif route.path == "/flood":
            self._flood()
        elif route.path == "/echo":
            # What an attacker's page would do with a secret it got: hand it back, encoded too.
            echoed = body + b"\n" + self.headers.get("authorization", "").encode()
            self._reply(200, echoed + b"\n" + base64.b64encode(echoed) + b"\n" + echoed.hex().encode())
        else:
            self._reply(200, b"hello from " + route.path.encode())

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _flood(self) -> None:
        """A 1 GB response; it stops when the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Length", str(GIGABYTE))
        self.end_headers()
        chunk = b"x" * CHUNK
        try:
            for _ in range(GIGABYTE // CHUNK):
                self.wfile.write(chunk)
        except OSError:
            return

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class LoopbackTarget:
    """Serves on 127.0.0.1 in a thread; ``received`` lists every request that reached it."""

    def __init__(self) -> None:
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.state = _State()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackTarget:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self.server.state.lock:
            return list(self.server.state.received)
