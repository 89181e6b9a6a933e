"""``autodo serve``: the server in the foreground, with a worker process beside it."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
import uvicorn

from autodo.config import Settings
from autodo.errors import InvalidInput
from autodo.server.app import create_app
from autodo.server.auth import is_loopback, load_or_create_token

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8420
    open_browser: bool = False
    auth: bool = True
    agents: int = 4


def serve_board(settings: Settings, options: ServeOptions) -> None:
    """Serve until Ctrl-C; the worker beside the server stops with it (its runs resume on restart)."""
    if not options.auth and not is_loopback(options.host):
        raise InvalidInput(f"--no-auth is only allowed on a loopback address, not {options.host}; drop --no-auth")
    token = load_or_create_token(settings.home) if options.auth else None
    app = create_app(settings, token=token)
    listener = _bind(options.host, options.port)  # bound first: with --port 0 the URL needs the real port
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    with _worker_beside(settings, options.agents):
        _announce(options, listener.getsockname()[1], token)
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn stops cleanly, then re-raises the signal
            server.run(sockets=[listener])
    click.echo("stopped; unfinished runs resume when a worker starts again", err=True)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise InvalidInput(f"cannot listen on {host}:{port} ({error.strerror}); pick another --port") from None
    listener.listen(128)
    return listener


def _announce(options: ServeOptions, port: int, token: str | None) -> None:
    host = f"[{options.host}]" if ":" in options.host else options.host
    url = f"http://{host}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"autodo board on {url}")
    click.echo("API on /api/v1 (docs at /docs), MCP on /mcp; Ctrl-C stops", err=True)
    sys.stdout.flush()
    if options.open_browser:
        webbrowser.open(url)


@contextmanager
def _worker_beside(settings: Settings, agents: int) -> Iterator[None]:
    if agents == 0:
        yield
        return
    log = settings.home / "worker.log"
    with log.open("a") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "autodo", "work", "--agents", str(agents)],
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    click.echo(f"worker started (pid {worker.pid}, {agents} agents per profile; log {_short(log)})", err=True)
    try:
        yield
    finally:
        worker.send_signal(signal.SIGINT)  # the worker's own clean stop (its lease is released)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM if this server dies without stopping it (kill -9)."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _short(path: Path) -> str:
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)
