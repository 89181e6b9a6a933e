"""Benchmark 1, team throughput: how close each stack gets to the ideal makespan of a team of agents.

Every stack works the same tasks (each a few model turns that write files, then a finish call)
with the same number of agents at once, against one stub model server over HTTP whose every answer
takes a fixed latency. Slow turns show what waiting costs (polling); fast turns show per-turn CPU.

    uv run --group bench python -m bench.throughput [--write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.common import BenchError, StubServer, Workload, check_requests
from bench.stacks import Measure, StackRun, autodo_worker, langgraph_sqlite, plain_pydantic_ai

LABELS = {
    "autodo-sqlite": "autodo on SQLite (DBOS workflows)",
    "autodo-postgres": "autodo on PostgreSQL (DBOS workflows)",
    "pydantic-ai": "plain pydantic-ai, no durability",
    "langgraph": f"LangGraph + AsyncSqliteSaver, durability={langgraph_sqlite.DURABILITY}",
}
LATENCIES = [1.0, 0.05]
POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
SECTION = "throughput"


@dataclass(frozen=True)
class Result:
    """A stack's median over the repeats at one latency."""

    stack: str
    workload: Workload
    makespan: float
    cpu: float
    requests: int
    details: dict[str, float]

    @property
    def ratio(self) -> float:
        return self.makespan / self.workload.ideal

    @property
    def overhead_ms(self) -> float:
        return self.workload.overhead_per_turn(self.makespan) * 1000

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu / self.requests * 1000


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, nargs="+", default=LATENCIES, help="seconds per model turn")
    parser.add_argument("--tasks", type=int, default=Workload.tasks)
    parser.add_argument("--agents", type=int, default=Workload.agents, help="agents at once")
    parser.add_argument("--turns", type=int, default=Workload.turns, help="model turns per task (at least 2)")
    parser.add_argument("--stacks", nargs="+", choices=list(LABELS), default=list(LABELS))
    parser.add_argument("--repeat", type=int, default=1, help="measure N times and report the median")
    parser.add_argument("--postgres", default=POSTGRES_SERVER, help="server for autodo-postgres's fresh databases")
    parser.add_argument("--write", action="store_true", help=f"update {report.BENCHMARKS_DOC.name}")
    arguments = parser.parse_args(argv)
    if arguments.turns < 2 or arguments.tasks < 1 or arguments.agents < 1 or arguments.repeat < 1:
        parser.error("--turns must be at least 2; --tasks, --agents and --repeat at least 1")
    return arguments


def measures(stacks: list[str], postgres_server: str, scratch: Path) -> dict[str, Measure]:
    every: dict[str, Measure] = {
        "autodo-sqlite": autodo_worker.AutodoStack(None, scratch / "bytecode"),
        "autodo-postgres": autodo_worker.AutodoStack(postgres_server, scratch / "bytecode"),
        "pydantic-ai": plain_pydantic_ai.measure,
        "langgraph": langgraph_sqlite.measure,
    }
    return {name: every[name] for name in stacks}


def run_latency(workload: Workload, stacks: dict[str, Measure], repeat: int, scratch: Path) -> list[Result]:
    """Every stack at one latency; the repeats go round the stacks so a noisy minute hits all of them."""
    samples: dict[str, list[StackRun]] = {name: [] for name in stacks}
    requests: dict[str, int] = {}
    with StubServer(workload, scratch) as stub:
        for attempt in range(repeat):
            for name, measure in stacks.items():
                stub.reset()
                run = measure(workload, stub.url, scratch / f"{name}-{workload.latency:g}-{attempt}")
                requests[name] = check_requests(name, stub.requests(), workload)
                samples[name].append(run)
                _progress(name, workload, run, attempt, repeat)
    return [_median(name, workload, runs, requests[name]) for name, runs in samples.items()]


def _progress(name: str, workload: Workload, run: StackRun, attempt: int, repeat: int) -> None:
    ratio = run.makespan / workload.ideal
    print(
        f"  {name} at {workload.latency:g} s, run {attempt + 1}/{repeat}: {run.makespan:.2f} s, {ratio:.3f} x ideal",
        file=sys.stderr,
        flush=True,
    )


def _median(name: str, workload: Workload, runs: list[StackRun], requests: int) -> Result:
    details = {key: statistics.median(run.details[key] for run in runs) for key in runs[0].details}
    makespan = statistics.median(run.makespan for run in runs)
    cpu = statistics.median(run.cpu for run in runs)
    return Result(name, workload, makespan, cpu, requests, details)


def results_table(results: list[Result]) -> str:
    headers = [
        "stack",
        "turn",
        "makespan",
        "ideal",
        "makespan ÷ ideal",
        "overhead per turn",
        "CPU per request",
        "requests",
    ]
    rows = [
        [
            LABELS[r.stack], f"{r.workload.latency:g} s", f"{r.makespan:.2f} s", f"{r.workload.ideal:g} s",
            f"**{r.ratio:.3f}**", f"{r.overhead_ms:.0f} ms", f"{r.cpu_ms_per_request:.1f} ms", str(r.requests),
        ]
        for r in results
    ]  # fmt: skip
    return report.markdown_table(headers, rows)


def details_table(results: list[Result]) -> str:
    """autodo's extra time, taken apart with the timestamps of its runs table."""
    described = [r for r in results if r.details]
    if not described:
        return ""
    keys = list(described[0].details)
    rows = [[r.stack, f"{r.workload.latency:g} s"] + [f"{r.details[key]:.0f} ms" for key in keys] for r in described]
    return report.markdown_table(["stack", "turn", *keys], rows)


def section(results: list[Result], arguments: argparse.Namespace, argv: Sequence[str], revision: str) -> str:
    workload = results[0].workload
    command = " ".join(["uv run --group bench python -m bench.throughput", *argv])
    postgres = arguments.postgres if "autodo-postgres" in arguments.stacks else None
    repeats = f", median of {arguments.repeat} runs" if arguments.repeat > 1 else ""
    return f"""## Team throughput

{workload.tasks} tasks of {workload.turns} model turns each ({workload.turns - 1} `write_file` calls, then `finish`),
{workload.agents} agents at once, against `autodo stub-model` in its own process over loopback HTTP,
once with slow and once with fast model turns. Ideal makespan = `ceil(tasks / agents) * turns *
latency`; overhead per turn = `(makespan - ideal) / (ceil(tasks / agents) * turns)`. autodo's
makespan is the wall time of `autodo work --until-settled` minus that of the same command on an
empty board; the peers run in the benchmark's process and are timed from the first run to the last.
*CPU per request* is the user and system CPU time of the process that does the work (autodo's worker,
less its empty-board run; the benchmark's own process for the peers; never the stub's) divided by
the requests. Every stack must send exactly `tasks * turns` model requests, each task turn once,
and leave every task done with its files written, or the benchmark fails.

Measured {datetime.now(UTC):%Y-%m-%d}{repeats}, autodo at {revision}, with `{command}` on
{report.machine_description(postgres)}.

{results_table(results)}

Where autodo's time goes, from its runs table: *first run started* is the first `started_at` after
the first `created_at`; *in-run overhead per turn* is the mean of `ended_at - started_at` divided by
the turns, less the latency; *slot refill* is the mean time from a run's end to the start of the run
that took its agent; *last run end to exit* includes noticing that the board settled and shutting
down. *Start-up and shut-down* is the empty-board command, already taken out of the makespan above.

{details_table(results)}
"""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    arguments = parse_arguments(argv)
    revision = report.autodo_revision()  # now: the checkout may move while the benchmark runs
    base = Workload(arguments.tasks, arguments.agents, arguments.turns)
    results: list[Result] = []
    try:
        with tempfile.TemporaryDirectory(prefix="autodo-bench-") as scratch:
            stacks = measures(arguments.stacks, arguments.postgres, Path(scratch))
            for latency in arguments.latency:
                workload = replace(base, latency=latency)
                results += run_latency(workload, stacks, arguments.repeat, Path(scratch) / f"latency-{latency:g}")
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    print(results_table(results))
    if any(r.details for r in results):
        print("\n" + details_table(results))
    if arguments.write:
        report.write_section(SECTION, section(results, arguments, argv, revision))
        print(f"\nwrote the {SECTION} section of {report.BENCHMARKS_DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
