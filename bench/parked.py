"""Benchmark 3, parked runs: one worker holding many runs that wait on the person, then the answers.

Every task's agent calls `ask_human` at its first turn and `finish` at its second. Once the inbox
stops filling, the worker's resident memory is read; then every question is answered in a tight
loop through the in-process service (`Desk().answer`), and each answer is timed to the stub
receiving that run's next model request.

    uv run --group bench python -m bench.parked [--runs 1000] [--write]
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from annotated_types import Le

from autodo.agents.profiles import Profile
from autodo.desk import Desk
from autodo.inbox.model import ItemKind
from autodo.store.schema import runs as runs_table
from autodo.tasks.model import NewTask, State
from bench import report
from bench._workers import (
    Home,
    ScriptedStub,
    WorkerProcess,
    agent_rule,
    chosen_databases,
    database_arguments,
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

SECTION = "parked"
COMMAND = "uv run --group bench python -m bench.parked"


def _concurrency_limit() -> int:
    """The most `concurrency` a profile may have, as profiles.py validates it."""
    for rule in Profile.model_fields["concurrency"].metadata:
        if isinstance(rule, Le) and isinstance(rule.le, int):
            return rule.le
    raise BenchError("the profile's `concurrency` has no upper limit: this benchmark's layouts need revisiting")


MAX_CONCURRENCY = _concurrency_limit()
AGENTS = 64  # the most `autodo work --agents` takes
MARKER = re.compile(r"\[parked-(\d+)\]")
QUESTION = "Which name should the file have?"
ANSWER = "call it parked.txt"
STALL = 5.0  # seconds without a run starting, all started ones parked: no more will park (25 queue polls)
PARK_TIMEOUT = 1800.0
RSS_TARGET_MIB = 500
RESUME_TARGET = 1.0
LONE = 20  # answers sent one at a time before the tight loop
LONE_PAUSE = 1.0  # seconds after each lone answer: its run has resumed long before the next
CPU_WINDOW = 5.0  # seconds over which the worker's CPU use is read


@dataclass(frozen=True)
class Layout:
    """How the tasks are spread over profiles: each profile is a queue with its own slots."""

    key: str
    name: str
    concurrency: dict[str, int]  # profile → its `concurrency`

    @property
    def slots(self) -> int:
        return sum(self.concurrency.values())

    def profile_of(self, n: int) -> str:
        names = list(self.concurrency)
        return names[n % len(names)]

    def describe(self) -> str:
        sizes = sorted(set(self.concurrency.values()))
        return f"{len(self.concurrency)} x {'/'.join(map(str, sizes))}"


def layouts(runs: int) -> dict[str, Layout]:
    """One profile at the highest concurrency allowed; and as many profiles as it takes to give every run a slot."""
    count = math.ceil(runs / MAX_CONCURRENCY)
    # Every worker builds the `default` profile's agent, so it must point at the stub too: it is the first.
    spread = {("default" if k == 0 else f"parked{k:02d}"): math.ceil(runs / count) for k in range(count)}
    return {
        "one": Layout("one", "one profile", {"default": min(runs, MAX_CONCURRENCY)}),
        "spread": Layout("spread", "spread over profiles", spread),
    }


@dataclass(frozen=True)
class Memory:
    """The worker with no task, and with every run that could park parked."""

    parked: int  # questions open at once, when no more runs could start
    park_seconds: float  # from the first task added to the plateau
    rss_idle: float  # MiB
    rss_parked: float
    threads: int
    cpu_idle: float  # % of one core
    cpu_parked: float

    @property
    def per_run_kib(self) -> float:
        return (self.rss_parked - self.rss_idle) * 1024 / max(1, self.parked)


@dataclass(frozen=True)
class Result:
    database: str
    layout: Layout
    runs: int
    memory: Memory
    lone: list[float]  # answer() returned → the run's next model request, one answer at a time
    burst: list[float]  # the same, for the rest answered in a tight loop
    drain_seconds: float  # from the first answer of the tight loop to every task done
    peak_rss: float


def stub_script() -> dict[str, Any]:
    ask = {**tool_turn("ask_human", question=QUESTION), "content": "I need a name first."}
    return {"rule": [agent_rule("parked", "[parked-", [ask, tool_turn("finish", summary="named it")])]}


class Plateau:
    """Says when no more runs will park: all of them did, or every started run is parked and none started lately."""

    def __init__(self, desk: Desk, runs: int) -> None:
        self.desk, self.runs = desk, runs
        self.last: tuple[int, int] = (-1, -1)
        self.since = time.monotonic()

    def __call__(self) -> int | None:
        parked, started = len(open_questions(self.desk)), self._started()
        if parked == self.runs:
            return parked
        if (parked, started) != self.last or parked != started:
            self.last, self.since = (parked, started), time.monotonic()
            return None
        return parked if time.monotonic() - self.since >= STALL else None

    def _started(self) -> int:
        with self.desk.engine.connect() as conn:
            query = sa.select(sa.func.count()).where(runs_table.c.started_at.is_not(None))
            return int(conn.execute(query).scalar_one())


def open_questions(desk: Desk) -> list[Any]:
    return [item for item in desk.inbox() if item.kind is ItemKind.QUESTION]


def add_tasks(desk: Desk, layout: Layout, runs: int) -> dict[str, int]:
    """Task id → its number; the lane label skips triage, which is not what is measured here."""
    added = {}
    for n in range(runs):
        task = NewTask(title=f"[parked-{n}] name the file", labels=["lane:agent"], profile=layout.profile_of(n))
        added[desk.add(task).id] = n
    return added


def answer_lone(desk: Desk, count: int) -> dict[str, float]:
    """Answer ``count`` questions one at a time, each once the last has long resumed: latency without a queue."""
    answered: dict[str, float] = {}
    for item in open_questions(desk)[:count]:
        desk.answer(item.id, ANSWER)
        answered[item.task_id] = time.time()
        time.sleep(LONE_PAUSE)
    return answered


def answer_all(desk: Desk, runs: int, answered: dict[str, float]) -> dict[str, float]:
    """Answer every other question as soon as it is open, one after another; task id → when answer() returned."""
    burst: dict[str, float] = {}
    deadline = time.monotonic() + PARK_TIMEOUT
    while len(answered) + len(burst) < runs:
        waiting = [item for item in open_questions(desk) if item.task_id not in answered]
        if not waiting and time.monotonic() > deadline:
            raise BenchError(f"{runs - len(answered) - len(burst)} questions never came after {PARK_TIMEOUT:g}s")
        if not waiting:
            time.sleep(0.05)  # the next run has not asked yet
        for item in waiting:
            desk.answer(item.id, ANSWER)
            burst[item.task_id] = time.time()
    return burst


def all_done(desk: Desk, runs: int) -> bool:
    return len(desk.tasks([State.DONE])) == runs


def resumed_at(requests: list[dict[str, Any]], tasks: dict[str, int]) -> dict[str, float]:
    """Task id → when the stub received its second-turn request; every task must have asked exactly twice."""
    first: dict[int, float] = {}
    for entry in requests:
        found = MARKER.search(entry["first_user"])
        if entry["rule"] == "parked" and entry["turn"] == 1 and found:
            first.setdefault(int(found.group(1)), entry["at"])
    missing = [n for n in tasks.values() if n not in first]
    if missing or len(requests) != 2 * len(tasks):
        raise BenchError(
            f"the stub saw {len(requests)} requests for {len(tasks)} tasks (expected two each); "
            f"{len(missing)} tasks never asked their second turn, e.g. {missing[:3]}"
        )
    return {task_id: first[n] for task_id, n in tasks.items()}


def measure(database: str, home: Home, stub: StubServer, layout: Layout, runs: int) -> Result:
    worker = start(home)
    desk = home.desk()
    with running([worker]):
        tasks, memory = park(desk, worker, layout, runs)
        lone = answer_lone(desk, min(LONE, runs // 2))
        started = time.perf_counter()
        burst = answer_all(desk, runs, lone)
        wait_until(lambda: all_done(desk, runs), PARK_TIMEOUT, "every task to be done", interval=0.2)
        drain = time.perf_counter() - started
        peak = worker.peak_rss_mib()
    desk.engine.dispose()
    resumed = resumed_at(stub.requests(), tasks)
    lone_latencies = [resumed[task] - at for task, at in lone.items()]
    burst_latencies = [resumed[task] - at for task, at in burst.items()]
    return Result(database, layout, runs, memory, lone_latencies, burst_latencies, drain, peak)


def park(desk: Desk, worker: WorkerProcess, layout: Layout, runs: int) -> tuple[dict[str, int], Memory]:
    """Add the tasks and wait until no more runs can park; the worker's memory and CPU then and before."""
    rss_idle, cpu_idle = worker.rss_mib(), worker.cpu_percent(CPU_WINDOW)
    tasks = add_tasks(desk, layout, runs)
    started = time.perf_counter()
    parked = wait_until(Plateau(desk, runs), PARK_TIMEOUT, "the runs to park", interval=0.5)
    park_seconds = time.perf_counter() - started
    rss, threads, cpu = worker.rss_mib(), worker.threads(), worker.cpu_percent(CPU_WINDOW)
    progress(f"    {parked} parked after {park_seconds:.1f} s, RSS {rss:.0f} MiB, {cpu:.0f}% CPU; answering")
    return tasks, Memory(parked, park_seconds, rss_idle, rss, threads, cpu_idle, cpu)


def start(home: Home) -> WorkerProcess:
    worker = home.start_worker("--agents", str(AGENTS), "--worker-id", "bench-parked")
    worker.wait_ready()
    return worker


def run(database: str, layout: Layout, runs: int, scratch: Path) -> Result:
    name = f"{database}-{layout.key}"
    progress(f"  {database}, {layout.name} ({layout.describe()}): {runs} runs")
    with ScriptedStub(stub_script(), scratch / f"stub-{name}") as stub, fresh_home(scratch, name, database) as home:
        home.write_profiles(stub.url, layout.concurrency, budget_turns=10)
        return measure(database, home, stub, layout, runs)


def memory_table(results: list[Result]) -> str:
    headers = [
        "database", "profiles x concurrency", "runs", "parked at once", "parked after", "worker RSS idle",
        "RSS parked", "per parked run", "threads parked", "CPU idle", "CPU parked",
    ]  # fmt: skip
    rows = [
        [
            r.database, f"{r.layout.name}: {r.layout.describe()}", str(r.runs), f"**{m.parked}**",
            f"{m.park_seconds:.1f} s", f"{m.rss_idle:.0f} MiB", f"**{m.rss_parked:.0f} MiB**",
            f"{m.per_run_kib:.0f} KiB", str(m.threads), f"{m.cpu_idle:.0f}%", f"{m.cpu_parked:.0f}%",
        ]
        for r in results
        for m in [r.memory]
    ]  # fmt: skip
    return report.markdown_table(headers, rows)


def latency_table(results: list[Result]) -> str:
    headers = [
        "database", "profiles x concurrency", "lone answers", "p50", "p99", "tight-loop answers", "p50", "p99",
        "max", "all done after", "peak RSS",
    ]  # fmt: skip
    rows = [
        [
            r.database, f"{r.layout.name}: {r.layout.describe()}", str(len(r.lone)), _ms(percentile(r.lone, 50)),
            f"**{_ms(percentile(r.lone, 99))}**", str(len(r.burst)), _ms(percentile(r.burst, 50)),
            f"**{_ms(percentile(r.burst, 99))}**", _ms(max(r.burst)), f"{r.drain_seconds:.1f} s",
            f"{r.peak_rss:.0f} MiB",
        ]
        for r in results
    ]  # fmt: skip
    return report.markdown_table(headers, rows)


def results_table(results: list[Result]) -> str:
    return memory_table(results) + "\n\n" + latency_table(results)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def section(results: list[Result], runs: int, argv: Sequence[str]) -> str:
    databases = sorted({r.database for r in results})
    return f"""## Parked runs

Runs waiting on the person cost a worker memory and, when answered, should carry on at once.
{runs} tasks whose agent asks a question at its first model turn (`ask_human`) and calls `finish`
at its second, worked by one `autodo work --agents {AGENTS}` process (the CLI's maximum) against
`autodo stub-model` in its own process. Once no more runs can park (every question is open, or
every started run is parked and none started for {STALL:g} s), the worker's resident memory is
read from `/proc/<pid>/status` (VmRSS; *per parked run* is the growth over the idle worker divided
by the runs parked) and its CPU use over {CPU_WINDOW:g} s from `/proc/<pid>/stat` (100% is one core).

Then the questions are answered through `Desk().answer` (in-process). *Answer → resume* runs from
`answer()` returning to the stub receiving that run's second-turn request, matched by the task's
marker in its prompt. The first {LONE} answers go one at a time, {LONE_PAUSE:g} s apart (*lone*:
what one person answering one question sees, with the others still parked); the rest go in a tight
loop, each as soon as its question is in the inbox (*tight loop*: the runs queue up behind the
worker, so the tail is the time the worker takes to resume all of them). *All done after* runs
from the first tight-loop answer to every task done. Targets: under {RSS_TARGET_MIB} MB with
{runs} parked, p99 under {RESUME_TARGET:g} s.

A run waiting on the person keeps its queue slot: its DBOS workflow is still executing (blocked in
`DBOS.recv` for the answer), each profile's queue admits at most `concurrency` runs (per worker
and across workers), and `concurrency` is at most {MAX_CONCURRENCY}. So with **one profile** at most
{MAX_CONCURRENCY} runs are parked at once; the others stay queued until an answer frees a slot, and
they park in waves as the answers come. **Spread over profiles** gives every run a slot by
assigning the tasks round-robin to `ceil(runs / {MAX_CONCURRENCY})` profiles with the same model:
it works only because `--agents` caps each profile's queue in a worker, not the worker as a whole.

What grows with the runs parked, besides their memory: on SQLite, DBOS has no push notifications,
so the worker's notification poller runs one transaction per waiting `recv` every 0.1 s (autodo's
`notification_listener_polling_interval_sec`), which costs CPU while nothing happens and delays
each wake-up by a whole sweep (PostgreSQL uses LISTEN/NOTIFY instead); the worker's signal
watcher reads the store every 0.05 s for interrupts, pauses and cancels of all its local runs;
and every parked run re-reads its answer from the store once a minute (a journaled step).

{provenance(COMMAND, argv, databases)}

{memory_table(results)}

{latency_table(results)}
"""


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.parked", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="tasks that each park a run")
    parser.add_argument("--layouts", nargs="+", choices=["one", "spread"], default=["one", "spread"])
    database_arguments(parser)
    arguments = parser.parse_args(argv)
    if arguments.runs < 1:
        parser.error("--runs must be at least 1")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    arguments = parse_arguments(argv)
    stop_on_sigterm()
    every = layouts(arguments.runs)
    try:
        with tempfile.TemporaryDirectory(prefix="autodo-bench-parked-") as scratch:
            results = [
                run(database, every[name], arguments.runs, Path(scratch))
                for database in chosen_databases(arguments)
                for name in arguments.layouts
            ]
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    print(results_table(results))
    if arguments.write:
        report.write_section(SECTION, section(results, arguments.runs, argv))
        print(f"\nwrote the {SECTION} section of {report.BENCHMARKS_DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
