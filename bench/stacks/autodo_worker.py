"""autodo itself: `autodo work --until-settled` in its own process, on SQLite files or on PostgreSQL.

The makespan is the worker's wall time minus the wall time of the same command on an empty board,
measured in the same run: what is left is the time the team took, start-up and shut-down removed.
"""

from __future__ import annotations

import os
import resource
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from autodo.config import Settings
from autodo.desk import Desk
from autodo.runs.model import Run
from autodo.tasks.model import NewTask, State
from bench.common import BenchError, Workload, check_workspaces
from bench.stacks import StackRun

WORKER_TIMEOUT = 120.0  # seconds on top of 20 times the ideal makespan


@dataclass(frozen=True)
class WorkerRun:
    seconds: float
    cpu: float  # user and system seconds
    exited_at: datetime


@dataclass
class AutodoStack:
    """The autodo stack on SQLite files (no server) or on fresh databases of a PostgreSQL server."""

    postgres_server: str | None
    bytecode_cache: Path  # shared by every worker process of the benchmark
    warmed: bool = False

    @property
    def name(self) -> str:
        return "autodo-postgres" if self.postgres_server else "autodo-sqlite"

    def __call__(self, workload: Workload, stub_url: str, scratch: Path) -> StackRun:
        if not self.warmed:
            # The first worker compiles autodo's imports to bytecode; neither timed worker should pay for that.
            self._empty_board(scratch / "warm-up", stub_url, workload)
            self.warmed = True
        empty = self._empty_board(scratch / "empty", stub_url, workload)
        with _fresh_database(self.postgres_server) as url:
            home = _prepare_home(scratch / "board", url, stub_url, workload)
            desk = Desk(Settings(home=home, database_url=url))
            task_ids = _add_tasks(desk, workload)
            worker = _run_worker(home, self._environment(home, url), workload)
            runs = _finished_runs(desk, task_ids, self.name)
            desk.engine.dispose()
        check_workspaces(self.name, [home / "workspaces" / task_id for task_id in task_ids], workload)
        details = {"start-up and shut-down": empty.seconds * 1000, **where_time_went(runs, worker, workload)}
        return StackRun(worker.seconds - empty.seconds, worker.cpu - empty.cpu, details)

    def _empty_board(self, home: Path, stub_url: str, workload: Workload) -> WorkerRun:
        with _fresh_database(self.postgres_server) as url:
            _prepare_home(home, url, stub_url, workload)
            return _run_worker(home, self._environment(home, url), workload)

    def _environment(self, home: Path, database_url: str | None) -> dict[str, str]:
        # No real keys or model settings leak in: the profile alone says where the model is.
        skip = ("AUTODO_", "OPENAI_", "ANTHROPIC_", "PYTHONDONTWRITEBYTECODE")
        env = {key: value for key, value in os.environ.items() if not key.startswith(skip)}
        # Bytecode goes to the benchmark's own cache, so start-up is that of an installed autodo and the
        # checkout and its virtual environment stay untouched.
        env["PYTHONPYCACHEPREFIX"] = str(self.bytecode_cache)
        env["AUTODO_HOME"] = str(home)
        if database_url is not None:
            env["AUTODO_DATABASE_URL"] = database_url
        return env


@contextmanager
def _fresh_database(server: str | None) -> Iterator[str | None]:
    """A new empty database on the server, dropped afterwards; None (SQLite files in the home) without a server."""
    if server is None:
        yield None
        return
    name = f"autodo_bench_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlsplit(server)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _prepare_home(home: Path, database_url: str | None, stub_url: str, workload: Workload) -> Path:
    """A home whose default profile points at the stub, with its store created and migrated."""
    home.mkdir(parents=True)
    (home / "profiles.toml").write_text(
        "[profile.default]\n"
        'model = "openai:stub-agent"\n'
        f'base_url = "{stub_url}"\n'
        f"concurrency = {workload.agents}\n"
        f"budget = {{ turns = {workload.turns + 5} }}\n"
    )
    # Migrating the store is start-up work; doing it here keeps it out of both timed commands alike.
    Desk(Settings(home=home, database_url=database_url)).engine.dispose()
    return home


def _add_tasks(desk: Desk, workload: Workload) -> list[str]:
    # The lane label skips triage: the benchmark measures the team, not the triage model.
    return [desk.add(NewTask(title=workload.title(n), labels=["lane:agent"])).id for n in range(workload.tasks)]


def _run_worker(home: Path, environment: dict[str, str], workload: Workload) -> WorkerRun:
    command = [sys.executable, "-m", "autodo", "work", "--agents", str(workload.agents), "--until-settled"]
    log = home / "worker.log"
    started, cpu = time.perf_counter(), _children_cpu()
    try:
        with log.open("w") as output:
            timeout = WORKER_TIMEOUT + 20 * workload.ideal
            code = subprocess.run(
                command, env=environment, cwd=home, stdout=output, stderr=subprocess.STDOUT,
                timeout=timeout,
            ).returncode  # fmt: skip
    except subprocess.TimeoutExpired:
        raise BenchError(f"the worker did not settle in {timeout:g}s; its log:\n{log.read_text()[-3000:]}") from None
    seconds = time.perf_counter() - started
    if code != 0:
        raise BenchError(f"the worker exited {code}; its log:\n{log.read_text()[-3000:]}")
    return WorkerRun(seconds, _children_cpu() - cpu, datetime.now(UTC))


def _children_cpu() -> float:
    # Counts only children that were waited for: the worker, not the stub server still running.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _finished_runs(desk: Desk, task_ids: list[str], stack: str) -> list[Run]:
    """The one run of every task; fails unless every task is done after exactly one run."""
    details = [desk.task(task_id) for task_id in task_ids]
    wrong = [(d.task.id, d.task.state.value, len(d.runs)) for d in details if d.task.state is not State.DONE]
    wrong += [(d.task.id, d.task.state.value, len(d.runs)) for d in details if len(d.runs) != 1]
    if wrong:
        raise BenchError(f"{stack}: {len(wrong)} tasks not done after exactly one run, e.g. {wrong[:3]}")
    return [d.runs[0] for d in details]


def where_time_went(runs: list[Run], worker: WorkerRun, workload: Workload) -> dict[str, float]:
    """Milliseconds from the store's run timestamps: queue pick-up, in-run cost per turn, refilling a slot."""
    created = [_when(run.created_at) for run in runs]
    starts = sorted(_when(run.started_at) for run in runs)
    ends = sorted(_when(run.ended_at) for run in runs)
    in_run = statistics.mean((_when(r.ended_at) - _when(r.started_at)).total_seconds() for r in runs)
    # The k-th run to start took the slot that the (k - agents)-th run to end gave back.
    refills = [(starts[k] - ends[k - workload.agents]).total_seconds() for k in range(workload.agents, len(runs))]
    return {
        "first run started": (starts[0] - min(created)).total_seconds() * 1000,
        "in-run overhead per turn": (in_run - workload.turns * workload.latency) / workload.turns * 1000,
        "slot refill": statistics.mean(refills) * 1000 if refills else 0.0,
        "last run end to exit": (worker.exited_at - ends[-1]).total_seconds() * 1000,
    }


def _when(stamp: str | None) -> datetime:
    if stamp is None:
        raise BenchError("a finished run has no start or end time in the store")
    return datetime.fromisoformat(stamp)
