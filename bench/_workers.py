"""What the run-control benchmarks (steering, parked, failover) share: a home, its worker processes, the stub.

Each benchmark drives real `autodo work` processes against `autodo stub-model` in its own process,
and talks to the board in-process through `autodo.desk.Desk`, so no CLI start-up is measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from autodo.config import Settings
from autodo.desk import Desk
from bench import report
from bench.common import BenchError, StubServer, Workload
from bench.stacks.autodo_worker import _fresh_database

T = TypeVar("T")

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASES = ("sqlite", "postgres")
STOP_TIMEOUT = 30.0
READY_TIMEOUT = 120.0  # start-up on a busy two-core machine, PostgreSQL migrations included


class ScriptedStub(StubServer):
    """The benchmarks' stub process, answering from this benchmark's own script instead of the team workload."""

    def __init__(self, script: dict[str, Any], scratch: Path) -> None:
        super().__init__(Workload(), scratch)
        self.script.write_text(json.dumps(script))


def agent_rule(name: str, marker: str, turns: list[dict[str, Any]]) -> dict[str, Any]:
    """A rule for the built-in agent (it offers `finish`) on tasks whose prompt holds ``marker``."""
    return {"name": name, "match": {"tool": "finish", "user": marker}, "turn": turns}


def tool_turn(tool: str, delay: float = 0.0, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": tool, "arguments": arguments}], "delay": delay}


@dataclass(frozen=True)
class Home:
    """One autodo home (and its database) that the benchmark's workers and its own Desk share."""

    path: Path
    database_url: str | None
    bytecode: Path  # shared by every worker process of the benchmark

    def desk(self) -> Desk:
        return Desk(Settings(home=self.path, database_url=self.database_url))

    def environment(self) -> dict[str, str]:
        # The profiles alone say where the model is: no real keys or model settings leak in.
        skip = ("AUTODO_", "OPENAI_", "ANTHROPIC_", "PYTHONDONTWRITEBYTECODE")
        env = {key: value for key, value in os.environ.items() if not key.startswith(skip)}
        # Bytecode goes to the benchmark's cache, so the checkout and its virtual environment stay untouched.
        env["PYTHONPYCACHEPREFIX"] = str(self.bytecode)
        env["AUTODO_HOME"] = str(self.path)
        if self.database_url is not None:
            env["AUTODO_DATABASE_URL"] = self.database_url
        return env

    def write_profiles(self, stub_url: str, concurrency: dict[str, int], budget_turns: int) -> None:
        """Profiles pointing at the stub, created with the store before any worker starts (start-up work)."""
        self.path.mkdir(parents=True, exist_ok=True)
        tables = [
            f'[profile.{name}]\nmodel = "openai:stub-agent"\nbase_url = "{stub_url}"\n'
            f"concurrency = {slots}\nbudget = {{ turns = {budget_turns} }}\n"
            for name, slots in concurrency.items()
        ]
        (self.path / "profiles.toml").write_text("\n".join(tables))
        self.desk().engine.dispose()

    def start_worker(self, *arguments: str, name: str = "worker") -> WorkerProcess:
        log = self.path / f"{name}.log"
        command = [sys.executable, "-m", "autodo", "work", *arguments]
        with log.open("w") as output:
            process = subprocess.Popen(
                command, env=self.environment(), cwd=self.path, stdout=output, stderr=subprocess.STDOUT
            )
        return WorkerProcess(process, log)


@dataclass
class WorkerProcess:
    """An `autodo work` process started by the benchmark; only this object ends it, by its pid."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self) -> None:
        """Wait for the header the worker prints once DBOS is launched and its queues are open."""
        wait_until(lambda: self._alive() and "agents" in self.log.read_text(), READY_TIMEOUT, "the worker to start")

    def _alive(self) -> bool:
        if self.process.poll() is not None:
            raise BenchError(f"the worker exited {self.process.returncode}; its log:\n{self.tail()}")
        return True

    def rss_mib(self) -> float:
        """Resident memory now (VmRSS), in MiB."""
        return _status_number(self.pid, "VmRSS") / 1024  # the kernel reports kB

    def peak_rss_mib(self) -> float:
        """The most resident memory so far (VmHWM), in MiB."""
        return _status_number(self.pid, "VmHWM") / 1024

    def threads(self) -> int:
        return _status_number(self.pid, "Threads")

    def cpu_percent(self, seconds: float) -> float:
        """The share of one core the process used over the next ``seconds``."""
        before, started = self._cpu_seconds(), time.monotonic()
        time.sleep(seconds)
        return (self._cpu_seconds() - before) / (time.monotonic() - started) * 100

    def _cpu_seconds(self) -> float:
        # utime and stime are fields 14 and 15 of /proc/<pid>/stat; the command name before them may hold spaces.
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> float:
        """SIGKILL, as a machine dying would; returns the epoch time of the kill."""
        os.kill(self.pid, signal.SIGKILL)
        killed_at = time.time()
        self.process.wait(timeout=STOP_TIMEOUT)
        return killed_at

    def stop(self) -> None:
        """Ctrl-C (a clean shutdown), then SIGKILL if it does not exit in time."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def tail(self) -> str:
        return self.log.read_text()[-3000:] if self.log.exists() else "(no log)"


def _status_number(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {field}")


@contextmanager
def fresh_home(scratch: Path, name: str, database: str) -> Iterator[Home]:
    """A new home ``scratch/name`` on SQLite files, or on a new PostgreSQL database dropped afterwards."""
    server = POSTGRES_SERVER if database == "postgres" else None
    with _fresh_database(server) as url:
        yield Home(scratch / name, url, scratch / "bytecode")


@contextmanager
def running(workers: Sequence[WorkerProcess]) -> Iterator[Sequence[WorkerProcess]]:
    """Stop every worker still running on the way out, measured or not; a failure carries their logs."""
    try:
        yield workers
    except BenchError as error:
        logs = "\n".join(f"--- {worker.log.name} (pid {worker.pid}):\n{worker.tail()}" for worker in workers)
        raise type(error)(f"{error}\n{logs}") from None
    finally:
        for worker in workers:
            worker.stop()


def wait_until(condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``condition`` until it returns something truthy; a BenchError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)  # another process's progress has no event this process can wait on
    raise BenchError(f"timed out after {timeout:g}s waiting for {what}")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: an actual sample, never an interpolation (so p99 of 40 samples is the largest)."""
    if not values:
        raise BenchError("no samples to take a percentile of")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def epoch(stamp: str) -> float:
    """A store timestamp (ISO-8601 UTC) as epoch seconds, comparable with the stub's `at`."""
    return datetime.fromisoformat(stamp).timestamp()


def database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--databases", nargs="+", choices=DATABASES, default=["sqlite"], help="where to run it")
    parser.add_argument(
        "--postgres", action="store_true", help=f"shorthand for --databases postgres ({POSTGRES_SERVER})"
    )
    parser.add_argument("--write", action="store_true", help=f"update {report.BENCHMARKS_DOC.name}")


def chosen_databases(arguments: argparse.Namespace) -> list[str]:
    return ["postgres"] if arguments.postgres else list(arguments.databases)


def provenance(command: str, argv: Sequence[str], databases: Sequence[str]) -> str:
    """When, what revision, which command, on which machine: the sentence every section starts its figures with."""
    postgres = POSTGRES_SERVER if "postgres" in databases else None
    shown = " ".join([command, *argv])
    return (
        f"Measured {datetime.now(UTC):%Y-%m-%d}, autodo at {report.autodo_revision()}, with `{shown}` on "
        f"{report.machine_description(postgres)}."
    )


def stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so the stub and every worker started are stopped on the way out."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
