"""Helpers for tests that drive real worker processes against the stub model over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from autodo.config import Settings
from autodo.server.app import create_app
from autodo.server.auth import load_or_create_token
from autodo.testing import StubScript

T = TypeVar("T")
AUTODO = [sys.executable, "-m", "autodo"]


def script(*rules: dict[str, Any]) -> StubScript:
    return StubScript.model_validate({"rule": list(rules)})


def agent_rule(name: str, marker: str, *turns: dict[str, Any]) -> dict[str, Any]:
    """A rule answering the built-in agent (which offers `finish`) for tasks whose prompt holds ``marker``."""
    return {"name": name, "match": {"tool": "finish", "user": marker}, "turn": list(turns)}


def call(tool: str, delay: float = 0.0, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": tool, "arguments": arguments}], "delay": delay}


def write_profiles(home: Path, url: str, extra: str = "", **default: Any) -> None:
    """A profiles.toml pointing the default profile at the stub (``extra_budget_turns`` sets its budget)."""
    home.mkdir(parents=True, exist_ok=True)
    turns = default.pop("extra_budget_turns", None)
    if turns is not None:
        extra = f"budget = {{ turns = {turns} }}\n" + extra
    settings = {"model": "openai:stub-agent", "base_url": url, "concurrency": 4, **default}
    lines = [f"{key} = {_toml(value)}" for key, value in settings.items()]
    text = f'triage_model = "openai:stub-triage"\ntriage_base_url = "{url}"\ntriage_max_retries = 0\n'
    (home / "profiles.toml").write_text(text + "\n[profile.default]\n" + "\n".join(lines) + "\n" + extra)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def environment(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.endswith("_API_KEY")}
    env["AUTODO_HOME"] = str(home)
    return env


def autodo(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a separate process."""
    result = subprocess.run([*AUTODO, *args], env=environment(home), capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"autodo {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def start_worker(home: Path, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
    out = open(log or home / "worker.log", "a")  # noqa: SIM115 - the process owns it
    return subprocess.Popen(
        [*AUTODO, "work", *args], env=environment(home), stdout=out, stderr=subprocess.STDOUT, text=True
    )


def finish_worker(process: subprocess.Popen[str], home: Path, timeout: float = 120) -> None:
    """Wait for a worker started with --until-settled; fail with its log if it does not exit 0."""
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"worker did not settle in {timeout}s:\n{(home / 'worker.log').read_text()}") from None
    assert code == 0, (home / "worker.log").read_text()


def wait_for(condition: Callable[[], T | None], timeout: float = 60, what: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class ServedApp:
    """``autodo serve``'s app on a free loopback port, in a thread of this process (real HTTP)."""

    def __init__(self, settings: Settings | None = None, *, auth: bool = True) -> None:
        self.settings = settings or Settings()
        self.token = load_or_create_token(self.settings.home) if auth else None
        self.app = create_app(self.settings, token=self.token)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServedApp:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=20, what="the server to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def client(self, *, authenticated: bool = True) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if authenticated and self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)
