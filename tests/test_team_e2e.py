"""End to end: a worker process, real HTTP to the stub model, ten tasks, four agents."""

from __future__ import annotations

from pathlib import Path

import pytest

from autodo.desk import Desk
from autodo.inbox.model import ItemKind
from autodo.runs.model import Run
from autodo.tasks.model import NewTask, State
from autodo.testing import StubModelServer
from tests.support import agent_rule, autodo, call, finish_worker, script, start_worker, wait_for, write_profiles

pytestmark = pytest.mark.slow

TURN = 0.4  # seconds per model turn: long enough that four agents overlap


def writer(n: int) -> dict[str, object]:
    return agent_rule(
        f"task-{n}",
        f"[task-{n}]",
        call("write_file", TURN, path=f"out-{n}.txt", content=f"result {n}\n"),
        call("finish", TURN, summary=f"wrote out-{n}.txt"),
    )


def asker() -> dict[str, object]:
    return agent_rule(
        "task-ask",
        "[task-ask]",
        {**call("ask_human", TURN, question="Which name should the file have?"), "content": "I need a name first."},
        call("write_file", TURN, path="named.txt", content="named by the person\n"),
        call("finish", TURN, summary="wrote named.txt"),
    )


def max_parallel(runs: list[Run]) -> int:
    """The most runs that were between start and end at the same moment."""
    edges = sorted([(run.started_at, 1) for run in runs] + [(run.ended_at, -1) for run in runs])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def test_ten_tasks_four_agents_dependencies_and_a_question_answered_from_another_process(home: Path) -> None:
    # Later tasks first: a prompt quotes the titles of the tasks it waited for.
    stub = StubModelServer(script(*(writer(n) for n in reversed(range(1, 10))), asker()))
    with stub:
        write_profiles(home, stub.url)
        desk = Desk()
        ids: dict[int, str] = {}
        for n in range(1, 10):
            after = [ids[n - 1]] if n in (2, 3) else []  # a chain: 1 → 2 → 3
            ids[n] = desk.add(NewTask(title=f"[task-{n}] write out-{n}", labels=["lane:agent"], blocked_by=after)).id
        ids[10] = desk.add(NewTask(title="[task-ask] write a named file", labels=["lane:agent"])).id
        worker = start_worker(home, "--agents", "4", "--until-settled")

        question = wait_for(lambda: [i for i in desk.inbox() if i.kind is ItemKind.QUESTION], what="the question")[0]
        assert question.prompt == "Which name should the file have?"
        assert question.context == {"agent_said": "I need a name first."}
        assert desk.task(ids[10]).task.state is State.WAITING
        autodo(home, "answer", question.id, "call it named.txt")
        finish_worker(worker, home)
        requests = stub.requests

    details = {n: desk.task(task_id) for n, task_id in ids.items()}
    assert {n: d.task.state for n, d in details.items()} == {n: State.DONE for n in ids}
    for n in range(1, 10):
        assert (home / "workspaces" / ids[n] / f"out-{n}.txt").read_text() == f"result {n}\n"
    assert (home / "workspaces" / ids[10] / "named.txt").exists()

    runs = [run for d in details.values() for run in d.runs]
    assert 2 <= max_parallel(runs) <= 4
    chain = [(details[n].runs[0].started_at or "", details[n].runs[0].ended_at or "") for n in (1, 2, 3)]
    assert chain[0][1] <= chain[1][0] and chain[1][1] <= chain[2][0]  # each started after its blocker ended
    answer_events = [e for e in details[10].events if e.kind == "tool.result" and e.data["tool"] == "ask_human"]
    assert answer_events[0].data["result"] == "The person answered: call it named.txt"
    turns = [(r.rule, r.turn) for r in requests]
    assert len(turns) == len(set(turns)) == 9 * 2 + 3  # every turn requested exactly once
    assert all(d.runs[0].input_tokens > 0 for d in details.values())
