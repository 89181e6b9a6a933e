"""Benchmark 2, steering latency: from `say` returning to the message reaching the model server.

One worker process, one long-running task at a time, messages sent to it one after another
through the in-process service (`Desk().say`), so no CLI start-up is measured. The stub's request
log says when the first request holding each message's unique marker arrived.

    uv run --group bench python -m bench.steering [--messages 40] [--write]
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autodo.desk import Desk
from autodo.steering.model import Mode
from autodo.steering.store import get_message
from autodo.tasks.model import NewTask
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

SECTION = "steering"
COMMAND = "uv run --group bench python -m bench.steering"
STEER_TURN = 1.0  # seconds per model turn while steering: a steer waits for the turn in flight
INTERRUPT_TURN = 30.0  # a turn this slow only ends early if the interrupt cuts it short
INTERRUPT_TARGET = 0.3
STEER_MARKER = "[bench-steer]"
INTERRUPT_MARKER = "[bench-interrupt]"
POLL = 0.1  # how often the stub's log is read; the latency comes from the stub's own arrival time


@dataclass(frozen=True)
class Sample:
    """One message: when `say` returned and when the stub saw it, with the requests around it."""

    said_in: float  # seconds the say() call took
    sent: float  # epoch seconds, as say() returned
    arrived: float  # the stub's `at` for the first request whose `said` held the message
    previous: float  # the `at` of the request before that one: the turn the message had to wait for
    missed: int  # requests that reached the stub after `sent` without the message
    taken: float  # when the run's checkpoint step took the message from the store (its delivered_at)

    @property
    def latency(self) -> float:
        return self.arrived - self.sent

    @property
    def taken_to_request(self) -> float:
        """From the checkpoint taking the message to its request reaching the stub: a message sent then waits a turn."""
        return self.arrived - self.taken

    @property
    def after_turn(self) -> float:
        """autodo's own share of a steer: from the later of sending and the previous turn's answer."""
        return self.arrived - max(self.sent, self.previous + STEER_TURN)


@dataclass(frozen=True)
class Result:
    database: str
    steer: list[Sample]
    interrupt: list[Sample]


def stub_script(messages: int) -> dict[str, Any]:
    """A steered task that lists its workspace, slowly, for as long as messages come; an interrupted one at turn 0.

    An interrupted turn never happened, so the interrupted task asks turn 0 again after each message.
    """
    steer_turns = [tool_turn("list_dir", STEER_TURN) for _ in range(3 * messages + 10)]
    interrupt_turns = [tool_turn("list_dir", INTERRUPT_TURN) for _ in range(2)]
    finish = tool_turn("finish", summary="stopped listening")
    return {
        "rule": [
            agent_rule("steer", STEER_MARKER, [*steer_turns, finish]),
            agent_rule("interrupt", INTERRUPT_MARKER, [*interrupt_turns, finish]),
        ]
    }


class Phase:
    """Messages of one mode to one task, each sent once the previous one reached the stub."""

    def __init__(self, desk: Desk, stub: StubServer, rule: str, mode: Mode) -> None:
        self.desk, self.stub, self.rule, self.mode = desk, stub, rule, mode
        self.token = secrets.token_hex(3)

    def requests(self) -> list[dict[str, Any]]:
        return [entry for entry in self.stub.requests() if entry["rule"] == self.rule]

    def send(self, task_id: str, n: int) -> Sample:
        marker = f"note-{self.token}-{n}"
        started = time.perf_counter()
        message = self.desk.say(task_id, f"please also keep {marker} in mind", self.mode)
        said_in = time.perf_counter() - started
        sent = time.time()
        timeout = 3 * INTERRUPT_TURN
        arrived = wait_until(lambda: self._arrival(marker), timeout, f"{self.mode.value} message {n}", POLL)
        arrivals = sorted(entry["at"] for entry in self.requests())
        previous = max(at for at in arrivals if at < arrived)
        missed = sum(sent < at < arrived for at in arrivals)
        return Sample(said_in, sent, arrived, previous, missed, self._taken(message.id))

    def _taken(self, message_id: str) -> float:
        with self.desk.engine.connect() as conn:
            delivered = get_message(conn, message_id).delivered_at
        if delivered is None:
            raise BenchError(f"message {message_id} reached the model but is not marked delivered in the store")
        return epoch(delivered)

    def _arrival(self, marker: str) -> float | None:
        return next((entry["at"] for entry in self.requests() if marker in entry["said"]), None)


def measure_steer(desk: Desk, stub: StubServer, messages: int, rng: random.Random) -> list[Sample]:
    """Each message at a random point of a 1 s turn, so the wait for the turn's end is spread evenly."""
    phase = Phase(desk, stub, "steer", Mode.STEER)
    task = desk.add(NewTask(title=f"{STEER_MARKER} keep listing the workspace", labels=["lane:agent"]))
    wait_until(phase.requests, 120, "the steered task's first model request")
    samples = []
    for n in range(messages):
        time.sleep(rng.uniform(0, STEER_TURN))
        samples.append(phase.send(task.id, n))
    desk.cancel(task.id)
    return samples


def measure_interrupt(desk: Desk, stub: StubServer, messages: int, rng: random.Random) -> list[Sample]:
    """Each message shortly after the stub received a 30 s request, which the interrupt must cut short."""
    phase = Phase(desk, stub, "interrupt", Mode.INTERRUPT)
    task = desk.add(NewTask(title=f"{INTERRUPT_MARKER} think for a long time", labels=["lane:agent"]))
    wait_until(phase.requests, 120, "the interrupted task's first model request")
    samples = []
    for n in range(messages):
        time.sleep(rng.uniform(0.1, 0.5))  # the request is in flight: its answer is 30 s away
        samples.append(phase.send(task.id, n))
    desk.cancel(task.id)
    if len(phase.requests()) != messages + 1:
        raise BenchError(
            f"the interrupted task sent {len(phase.requests())} model requests for {messages} interrupts; "
            f"expected {messages + 1}: one slow turn, then one retry of it after each interrupt"
        )
    return samples


def run(database: str, messages: int, scratch: Path, seed: int) -> Result:
    rng = random.Random(seed)
    stub_scratch = scratch / f"stub-{database}"
    with ScriptedStub(stub_script(messages), stub_scratch) as stub, fresh_home(scratch, database, database) as home:
        home.write_profiles(stub.url, {"default": 2}, budget_turns=3 * messages + 20)
        desk = home.desk()
        with running([start(home)]):
            progress(f"  {database}: {messages} steer messages at {STEER_TURN:g} s turns")
            steer = measure_steer(desk, stub, messages, rng)
            progress(f"  {database}: {messages} interrupts of {INTERRUPT_TURN:g} s turns")
            interrupt = measure_interrupt(desk, stub, messages, rng)
        desk.engine.dispose()
    return Result(database, steer, interrupt)


def start(home: Home) -> WorkerProcess:
    worker = home.start_worker("--agents", "2", "--worker-id", "bench-steering")
    worker.wait_ready()
    return worker


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def results_table(results: list[Result]) -> str:
    headers = [
        "database", "mode", "turn in flight", "messages", "p50", "p99", "p50 / p99 after the turn ended",
        "missed the next request", "taken → request p50 / p99", "say() p50",
    ]  # fmt: skip
    return report.markdown_table(headers, [row for r in results for row in _rows(r)])


def _rows(result: Result) -> list[list[str]]:
    rows = []
    for mode, samples, turn in (("steer", result.steer, STEER_TURN), ("interrupt", result.interrupt, INTERRUPT_TURN)):
        latencies, after = [s.latency for s in samples], [s.after_turn for s in samples]
        window = [s.taken_to_request for s in samples]
        share = f"{_ms(percentile(after, 50))} / {_ms(percentile(after, 99))}" if mode == "steer" else "(cut short)"
        rows.append([
            result.database, f"`{mode}`", f"{turn:g} s", str(len(samples)), _ms(percentile(latencies, 50)),
            f"**{_ms(percentile(latencies, 99))}**", share, str(sum(s.missed > 0 for s in samples)),
            f"{_ms(percentile(window, 50))} / {_ms(percentile(window, 99))}",
            _ms(percentile([s.said_in for s in samples], 50)),
        ])  # fmt: skip
    return rows


def section(results: list[Result], messages: int, argv: Sequence[str]) -> str:
    databases = [r.database for r in results]
    return f"""## Steering latency

How long a message to a running agent takes to reach the model: from `Desk().say(task, text, mode)`
returning (the service the CLI calls, in-process, so the CLI's start-up is not counted) to the stub
model server receiving the first request whose later user messages hold the message's unique
marker (the `at` of the stub's request log). One `autodo work --agents 2` process, one task at a
time, {messages} messages per mode, each sent after the previous one arrived:

- **`steer`** goes into the agent's next model request, so it waits for the turn in flight. The
  task lists its workspace over and over with every model turn taking {STEER_TURN:g} s, and each
  message is sent at a random point of a turn (a uniform 0 to {STEER_TURN:g} s pause after the previous
  arrival), so the expected wait for the turn is about half a turn. *After the turn ended* is the
  rest: from the later of sending and the answer to the request before the one that carried the
  message (that request's arrival + {STEER_TURN:g} s), which is autodo's own cost between turns
  (tool call, checkpoint step, journal writes). *Missed the next request* counts messages sent in
  the moment between the checkpoint that takes messages and the request leaving: they ride the
  request after, a whole turn later. *Taken → request* is that moment's length: from the
  message's `delivered_at` in the store (the checkpoint step took it) to the stub receiving it.
- **`interrupt`** cuts the model request in flight short first. The task's turn takes
  {INTERRUPT_TURN:g} s, each interrupt is sent 0.1 to 0.5 s after the stub received that request, and
  the benchmark fails unless every interrupt cut its turn short (exactly one request per message
  plus the first). Target: p99 under {INTERRUPT_TARGET * 1000:.0f} ms.

Percentiles are nearest-rank (p99 of 40 samples is the largest). *say() p50* is the in-process call.

{provenance(COMMAND, argv, databases)}

{results_table(results)}
"""


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.steering", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=40, help="messages per mode")
    parser.add_argument("--seed", type=int, default=2, help="seed for the random points in a turn")
    database_arguments(parser)
    arguments = parser.parse_args(argv)
    if arguments.messages < 1:
        parser.error("--messages must be at least 1")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    arguments = parse_arguments(argv)
    stop_on_sigterm()
    try:
        with tempfile.TemporaryDirectory(prefix="autodo-bench-steering-") as scratch:
            results = [
                run(database, arguments.messages, Path(scratch), arguments.seed)
                for database in chosen_databases(arguments)
            ]
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    print(results_table(results))
    if arguments.write:
        report.write_section(SECTION, section(results, arguments.messages, argv))
        print(f"\nwrote the {SECTION} section of {report.BENCHMARKS_DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
