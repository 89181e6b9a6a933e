"""Benchmark 4, failover: from `kill -9` of a worker mid-command to its runs resuming on another worker.

Three workers share one database; each task's agent runs a slow command. The worker holding a
run is killed while the command runs, and the benchmark times the live workers' takeover (the
`run.taken_over` event) and the run's next step (the stub receiving its next model request).

    uv run --group bench python -m bench.failover [--leases 30 5] [--trials 3] [--write]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from autodo.desk import Desk
from autodo.tasks.model import NewTask, State
from bench import report
from bench._workers import (
    Home,
    ScriptedStub,
    WorkerProcess,
    agent_rule,
    chosen_databases,
    database_arguments,
    epoch,
    fresh_home,
    percentile,
    progress,
    provenance,
    running,
    stop_on_sigterm,
    tool_turn,
    wait_until,
)
from bench.common import BenchError, StubServer

SECTION = "failover"
COMMAND = "uv run --group bench python -m bench.failover"
LEASES = [30.0, 5.0]
WORKERS = ("w1", "w2", "w3")
TASKS = 3
AGENTS = 2  # per worker, so the live workers have free slots for the runs they take over
PID_FILE = "command.pid"
MARKER = "[failover-"


class DuplicateRun(BenchError):
    """Two workers both started a run of one task: a dispatch race in autodo, not a failover; the trial is redone."""


@dataclass(frozen=True)
class Sample:
    """One run of the killed worker: seconds from the kill to its takeover and to its next model request."""

    lease: float
    taken_over: float
    resumed: float


def command_seconds(lease: float) -> float:
    """Long enough to still run at the kill, which comes up to a third of a lease after the command starts."""
    return lease / 3 + 10


def stub_script(lease: float) -> dict[str, Any]:
    # `exec` keeps the shell's pid, which the command writes down: the benchmark knows the run is mid-command.
    command = ["sh", "-c", f"echo $$ > {PID_FILE}; exec sleep {command_seconds(lease):g}"]
    turns = [tool_turn("run_command", argv=command), tool_turn("finish", summary="the build is done")]
    return {"rule": [agent_rule("failover", MARKER, turns)]}


class Trial:
    """Three workers on a fresh home; the one holding the first task's run is killed mid-command."""

    def __init__(self, home: Home, stub: StubServer, lease: float, rng: random.Random) -> None:
        self.home, self.stub, self.lease, self.rng = home, stub, lease, rng
        self.desk: Desk = home.desk()
        self.tasks: list[str] = []

    def start_workers(self) -> dict[str, WorkerProcess]:
        arguments = ("--lease", f"{self.lease:g}", "--agents", str(AGENTS))
        workers = {name: self.home.start_worker("--worker-id", name, *arguments, name=name) for name in WORKERS}
        for worker in workers.values():
            worker.wait_ready()
        return workers

    def add_tasks(self) -> None:
        titles = [f"{MARKER}{n}] wait for the build" for n in range(TASKS)]
        self.tasks = [self.desk.add(NewTask(title=title, labels=["lane:agent"])).id for title in titles]

    def holders(self) -> dict[str, str]:
        """Task id → the worker running it, once every task's command is running."""
        workspaces = self.home.path / "workspaces"
        if not all((workspaces / task / PID_FILE).exists() for task in self.tasks):
            return {}
        return {task: self.desk.task(task).runs[0].worker or "" for task in self.tasks}

    def kill_holder(self, workers: dict[str, WorkerProcess]) -> tuple[float, list[str]]:
        """Kill the worker running the first task, mid-command; the kill's epoch time and the tasks it held."""
        holders = wait_until(self.holders, 60 + self.lease, "every task's command to start")
        victim = holders[self.tasks[0]]
        if victim not in workers:
            raise BenchError(f"the first task is held by {victim!r}, not one of the benchmark's workers")
        # Heartbeats come every lease / 3: a random wait spreads the kill over their cycle.
        time.sleep(self.rng.uniform(0, self.lease / 3))
        return workers[victim].kill(), [task for task, holder in holders.items() if holder == victim]

    def measure(self, killed_at: float, orphans: list[str]) -> list[Sample]:
        """Wait for each of the killed worker's runs to ask its next model turn elsewhere."""
        timeout = 60 + 3 * self.lease
        resumed = {task: wait_until(partial(self._second_turn, task), timeout, "a run to resume") for task in orphans}
        return [Sample(self.lease, self._taken_over(task) - killed_at, resumed[task] - killed_at) for task in orphans]

    def _second_turn(self, task_id: str) -> float | None:
        marker = self.desk.task(task_id).task.title.split("]")[0]
        turns = [e["at"] for e in self.stub.requests() if e["turn"] == 1 and marker + "]" in e["first_user"]]
        return min(turns, default=None)

    def _taken_over(self, task_id: str) -> float:
        events = [e for e in self.desk.task(task_id).events if e.kind == "run.taken_over"]
        if len(events) != 1:
            raise BenchError(f"task {task_id} has {len(events)} run.taken_over events; expected one")
        return epoch(events[0].at)

    def wait_done(self) -> None:
        wait_until(self._all_done, 60 + command_seconds(self.lease), "every task to be done", interval=0.2)

    def check_outcome(self) -> None:
        """Every task done after one run, and no model turn asked twice: the takeover replayed instead of redoing."""
        twice = {task: [run.worker for run in self.desk.task(task).runs] for task in self.tasks}
        twice = {task: holders for task, holders in twice.items() if len(holders) > 1}
        if twice:
            raise DuplicateRun(f"tasks worked by two runs at once (task: workers): {twice}")
        turns = Counter(entry["turn"] for entry in self.stub.requests())
        if turns != {0: TASKS, 1: TASKS}:
            raise BenchError(f"the stub saw model turns {dict(turns)}; expected each of {TASKS} tasks to ask 0 and 1")

    def _all_done(self) -> bool:
        return all(self.desk.task(task).task.state is State.DONE for task in self.tasks)

    def end_orphaned_commands(self) -> None:
        """The killed worker's command outlives it (it has a session of its own): end it by its recorded pid."""
        for task in self.tasks:
            pid = int((self.home.path / "workspaces" / task / PID_FILE).read_text())
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep\0"):
                    os.kill(pid, signal.SIGKILL)


def run_trial(database: str, lease: float, number: int, scratch: Path, rng: random.Random) -> list[Sample]:
    name = f"{database}-lease-{lease:g}-{number}"
    with (
        ScriptedStub(stub_script(lease), scratch / f"stub-{name}") as stub,
        fresh_home(scratch, name, database) as home,
    ):
        home.write_profiles(stub.url, {"default": len(WORKERS) * AGENTS}, budget_turns=10)
        trial = Trial(home, stub, lease, rng)
        workers = trial.start_workers()
        with running(list(workers.values())):
            trial.add_tasks()
            killed_at, orphans = trial.kill_holder(workers)
            samples = trial.measure(killed_at, orphans)
            trial.wait_done()
        trial.end_orphaned_commands()
        trial.check_outcome()
        trial.desk.engine.dispose()
    for sample in samples:
        progress(f"    trial {number + 1}: taken over {sample.taken_over:.1f} s, resumed {sample.resumed:.1f} s")
    return samples


@dataclass(frozen=True)
class Result:
    database: str
    lease: float
    samples: list[Sample]
    redone: list[str]  # why each redone trial was not counted


def results_table(results: list[Result]) -> str:
    headers = [
        "database", "lease", "trials redone", "runs taken over", "taken over: p50", "max", "÷ lease (p50 / max)",
        "next model request: p50", "max", "÷ lease (p50 / max)",
    ]  # fmt: skip
    return report.markdown_table(headers, [_row(r) for r in results])


def _row(result: Result) -> list[str]:
    lease = result.lease
    cells = [result.database, f"{lease:g} s", str(len(result.redone)), str(len(result.samples))]
    for seconds in ([s.taken_over for s in result.samples], [s.resumed for s in result.samples]):
        middle, worst = percentile(seconds, 50), max(seconds)
        cells += [f"{middle:.1f} s", f"{worst:.1f} s", f"**{middle / lease:.2f}** / {worst / lease:.2f}"]
    return cells


def section(results: list[Result], trials: int, argv: Sequence[str]) -> str:
    databases = sorted({r.database for r in results})
    return f"""## Failover

How long the runs of a worker that dies stay stuck. Three workers (`autodo work --worker-id w1|w2|w3
--lease L --agents {AGENTS}`) share one database; {TASKS} tasks each run a slow command (`sleep`,
lease / 3 + 10 s). Once every command runs, the worker holding the first task's run gets
`SIGKILL` after a random 0 to lease / 3 s (so the kill lands anywhere in its heartbeat cycle), and
each run it held is timed from the kill to *taken over* (the `run.taken_over` event a live worker
writes when it claims the dead worker's lease, `events.at`) and to its *next model request* (the
stub receiving its second turn: the run replayed elsewhere, and the model is told the command in
flight was interrupted). {trials} trials per lease, each on a fresh home with fresh workers; every
task must end done after one run with each model turn asked once, or the benchmark fails.

*Trials redone*: a trial in which two workers both started a run of the same task (at this
revision two workers' dispatch loops can both claim a freshly queued task) has a task worked twice
at once, commands included. That is not what this benchmark measures, so the trial is not counted
and is run again (at most {trials} times).

A worker renews its lease every lease / 3 and claims lapsed leases at the same pace, so a killed
worker is taken over between about 2/3 and 4/3 of a lease after the kill (its last heartbeat was
up to a third of a lease before it; the claimer looks every third); the run then waits for a
queue poll (0.2 s) and replays its journal.

{provenance(COMMAND, argv, databases)}

{results_table(results)}
"""


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__.split("\n\n")[0])
    parser.add_argument("--leases", type=float, nargs="+", default=LEASES, help="seconds (autodo's default is 30)")
    parser.add_argument("--trials", type=int, default=5, help="kills per lease")
    parser.add_argument("--seed", type=int, default=4, help="seed for the random point of the kill")
    database_arguments(parser)
    arguments = parser.parse_args(argv)
    if arguments.trials < 1 or min(arguments.leases) < 1:
        parser.error("--trials must be at least 1 and every lease at least 1 s (autodo's minimum)")
    return arguments


def measure(database: str, lease: float, trials: int, scratch: Path, rng: random.Random) -> Result:
    """``trials`` trials that each end with every task done once; one spoilt by a duplicate run is redone."""
    progress(f"  {database}, lease {lease:g} s: {trials} trials")
    samples: list[Sample] = []
    redone: list[str] = []
    for number in range(2 * trials):
        try:
            samples += run_trial(database, lease, number, scratch, rng)
        except DuplicateRun as error:
            progress(f"    trial {number + 1} redone: {error}")
            redone.append(str(error))
        if number + 1 - len(redone) == trials:
            return Result(database, lease, samples, redone)
    raise BenchError(f"{len(redone)} of {2 * trials} trials were spoilt by duplicate runs, e.g. {redone[0]}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    arguments = parse_arguments(argv)
    stop_on_sigterm()
    rng = random.Random(arguments.seed)
    try:
        with tempfile.TemporaryDirectory(prefix="autodo-bench-failover-") as scratch:
            results = [
                measure(database, lease, arguments.trials, Path(scratch), rng)
                for database in chosen_databases(arguments)
                for lease in arguments.leases
            ]
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    print(results_table(results))
    if arguments.write:
        report.write_section(SECTION, section(results, arguments.trials, argv))
        print(f"\nwrote the {SECTION} section of {report.BENCHMARKS_DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
