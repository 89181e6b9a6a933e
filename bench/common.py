"""What the benchmarks share: the team workload, the stub model server in its own process, the sanity checks."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

FILE_TOOL = "write_file"
FINISH_TOOL = "finish"
READY_TIMEOUT = 30.0


class BenchError(Exception):
    """A benchmark could not measure what it claims to: a stack failed, or did other work than asked."""


@dataclass(frozen=True)
class Workload:
    """Tasks of some model turns each, worked by a team of agents against a stub with a fixed latency per turn."""

    tasks: int = 100
    agents: int = 20
    turns: int = 5  # file writes on all turns but the last, then the finish call
    latency: float = 1.0

    @property
    def waves(self) -> int:
        return math.ceil(self.tasks / self.agents)

    @property
    def ideal(self) -> float:
        """The makespan with zero overhead: every wave of agents waits only for the model."""
        return self.waves * self.turns * self.latency

    @property
    def requests(self) -> int:
        return self.tasks * self.turns

    def overhead_per_turn(self, makespan: float) -> float:
        """Seconds of overhead per model turn on the critical path."""
        return (makespan - self.ideal) / (self.waves * self.turns)

    def title(self, n: int) -> str:
        # The marker makes every task's first user message unique, so repeated turns show in the stub's log.
        return f"[bench-{n}] write {self.turns - 1} small files"

    def files(self) -> list[str]:
        return [f"step-{turn}.txt" for turn in range(1, self.turns)]


def stub_script(workload: Workload) -> dict[str, Any]:
    """One rule for every stack: write the workload's files one per turn, then call finish."""
    delay = workload.latency
    writes = [
        _turn(FILE_TOOL, delay, path=name, content=f"written at turn {turn}\n")
        for turn, name in enumerate(workload.files(), start=1)
    ]
    finish = _turn(FINISH_TOOL, delay, summary=f"wrote {len(writes)} files")
    return {"rule": [{"name": "bench", "match": {"tool": FINISH_TOOL}, "turn": [*writes, finish]}]}


def _turn(tool: str, delay: float, **arguments: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": tool, "arguments": arguments}], "delay": delay}


class StubServer:
    """`autodo stub-model` in a process of its own, so its CPU does not share a GIL with the stack measured."""

    def __init__(self, workload: Workload, scratch: Path) -> None:
        scratch.mkdir(parents=True, exist_ok=True)
        self.script = scratch / f"stub-{workload.latency:g}.json"
        self.script.write_text(json.dumps(stub_script(workload)))
        self.log = scratch / f"stub-{workload.latency:g}.log"
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> StubServer:
        command = [sys.executable, "-m", "autodo", "stub-model", "--script", str(self.script), "--port", str(self.port)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self._wait_until_ready()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def reset(self) -> None:
        """Forget the request log, so the next stack's requests are counted alone."""
        httpx.post(self.url.removesuffix("/v1") + "/_stub/reset").raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        response = httpx.get(self.url.removesuffix("/v1") + "/_stub/requests", timeout=30)
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()
        return entries

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise BenchError(f"the stub model server exited at start:\n{self.log.read_text()}")
            try:
                httpx.get(self.url + "/models", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.1)  # a process starting up has no event to wait on
        raise BenchError(f"the stub model server did not answer within {READY_TIMEOUT:g}s:\n{self.log.read_text()}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def check_requests(stack: str, requests: list[dict[str, Any]], workload: Workload) -> int:
    """Exactly one answered request per task and turn: a repeated or failed turn would flatter or spoil the time."""
    failed = [entry for entry in requests if entry["status"] != 200]
    distinct = {(entry["first_user"], entry["turn"]) for entry in requests}
    if failed or len(requests) != workload.requests or len(distinct) != len(requests):
        raise BenchError(
            f"{stack}: the stub saw {len(requests)} requests ({len(distinct)} distinct task turns, "
            f"{len(failed)} not answered 200); expected exactly {workload.requests}, each task turn once"
        )
    return len(requests)


def check_workspaces(stack: str, workspaces: list[Path], workload: Workload) -> None:
    """Every task's workspace holds every file its agent was told to write."""
    expected = workload.files()
    short = [path for path in workspaces if not all((path / name).is_file() for name in expected)]
    if len(workspaces) != workload.tasks or short:
        raise BenchError(
            f"{stack}: {len(workspaces)} workspaces for {workload.tasks} tasks, "
            f"{len(short)} missing some of {', '.join(expected)} (first: {short[:1]})"
        )
