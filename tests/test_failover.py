"""Three workers share the queues; one is killed mid-run and the others take its runs over."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from autodo.desk import Desk
from autodo.errors import Conflict
from autodo.runs import leases
from autodo.runs.ledger import INTERRUPTED
from autodo.store.schema import workers
from autodo.tasks.model import NewTask, State
from autodo.testing import StubModelServer
from tests.support import agent_rule, call, finish_worker, script, start_worker, wait_for, write_profiles

TASKS = 6
LEASE = "3"

WORK = agent_rule(
    "failover",
    "[failover]",
    call("run_command", argv=["sh", "-c", "echo a >> effects.log"]),
    call("run_command", argv=["sh", "-c", "echo b >> effects.log; sleep 4"]),  # a worker dies during this one
    call("finish", summary="both effects done"),
)


@pytest.mark.slow
def test_a_killed_worker_s_runs_are_taken_over_without_repeating_turns_or_effects(home: Path) -> None:
    with StubModelServer(script(WORK)) as stub:
        write_profiles(home, stub.url, concurrency=6)
        desk = Desk()
        tasks = [desk.add(NewTask(title=f"[failover] job {n}", labels=["lane:agent"])) for n in range(TASKS)]
        workers = {
            name: start_worker(home, "--worker-id", name, "--lease", LEASE, "--agents", "2", "--until-settled")
            for name in ("w1", "w2", "w3")
        }
        logs = {task.id: home / "workspaces" / task.id / "effects.log" for task in tasks}
        doomed_task = wait_for(
            lambda: next((t for t, log in logs.items() if log.exists() and "b" in log.read_text()), None),
            what="a run to reach its slow command",
        )
        doomed = desk.task(doomed_task).runs[0].worker
        assert doomed in workers
        os.kill(workers[doomed].pid, signal.SIGKILL)
        workers[doomed].wait(timeout=10)
        for name, process in workers.items():
            if name != doomed:
                finish_worker(process, home, timeout=90)
        requests = stub.requests

    for task in tasks:
        detail = desk.task(task.id)
        assert detail.task.state is State.DONE, detail.task
        effects = logs[task.id].read_text().split()
        results = [e.data["result"] for e in detail.events if e.kind == "tool.result"]
        # Every side effect ran at most once. One that was starting when its worker died is not
        # run again: the model is told it was interrupted (a real model would look and redo it).
        assert effects == ["a", "b"] or (effects == ["a"] and INTERRUPTED in results), (effects, results)
    assert Counter(r.turn for r in requests) == {0: TASKS, 1: TASKS, 2: TASKS}  # no completed turn asked again
    taken = [e for e in desk.task(doomed_task).events if e.kind == "run.taken_over"]
    assert [e.data["from"] for e in taken] == [doomed]


def test_a_worker_id_held_by_a_live_worker_is_refused(desk: Desk) -> None:
    with desk.engine.begin() as conn:
        leases.register(conn, "busy", 30)
        conn.execute(workers.update().values(host="elsewhere"))
    with pytest.raises(Conflict, match="in use"), desk.engine.begin() as conn:
        leases.register(conn, "busy", 30)


def test_exactly_one_worker_claims_a_lapsed_lease(desk: Desk) -> None:
    with desk.engine.begin() as conn:
        leases.register(conn, "gone", 0.01)
        leases.register(conn, "a", 30)
        leases.register(conn, "b", 30)
    time.sleep(0.05)  # past the 10 ms lease
    with desk.engine.begin() as conn:
        first = leases.claim_lapsed(conn, "a")
    with desk.engine.begin() as conn:
        second = leases.claim_lapsed(conn, "b")
    assert (first, second) == (["gone"], [])
