"""kill -9 in the middle of a run: the run resumes, nothing completed is repeated."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from autodo.desk import Desk
from autodo.runs.ledger import INTERRUPTED
from autodo.tasks.model import NewTask, State
from autodo.testing import StubModelServer
from tests.support import agent_rule, call, finish_worker, script, start_worker, wait_for, write_profiles

pytestmark = pytest.mark.slow


def effects(*lines: str) -> list[str]:
    return ["sh", "-c", "; ".join(lines)]


CRASHY = agent_rule(
    "crashy",
    "[crashy]",
    call("run_command", argv=effects("echo one >> effects.log")),
    call("write_file", path="a.txt", content="written once\n"),
    call("run_command", argv=effects("echo two >> effects.log", "sleep 3")),  # the worker dies during this one
    call("run_command", argv=effects("echo three >> effects.log")),
    call("finish", summary="all three effects done"),
)


def test_a_run_killed_mid_tool_resumes_without_repeating_turns_or_side_effects(home: Path) -> None:
    with StubModelServer(script(CRASHY)) as stub:
        write_profiles(home, stub.url)
        desk = Desk()
        task = desk.add(NewTask(title="[crashy] three effects", labels=["lane:agent"]))
        log = home / "workspaces" / task.id / "effects.log"

        first = start_worker(home, "--worker-id", "crash-worker")
        wait_for(lambda: log.exists() and "two" in log.read_text(), what="the slow command to start")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert desk.task(task.id).task.state is State.RUNNING

        second = start_worker(home, "--worker-id", "crash-worker", "--until-settled")
        finish_worker(second, home)
        requests = stub.requests

    detail = desk.task(task.id)
    assert detail.task.state is State.DONE
    assert log.read_text().split() == ["one", "two", "three"]  # each side effect ran exactly once
    turns = [request.turn for request in requests]
    assert sorted(turns) == [0, 1, 2, 3, 4]  # no completed model turn was requested again
    results = [e.data["result"] for e in detail.events if e.kind == "tool.result" and e.data["tool"] == "run_command"]
    assert results[1] == INTERRUPTED  # the model was told, instead of the command running twice
    assert len(detail.runs) == 1
