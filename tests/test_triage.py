"""Triage: the configured model picks the lane with a reason; labels and the person override it."""

from __future__ import annotations

from pathlib import Path

import pytest

from autodo.desk import Desk
from autodo.inbox.model import ItemKind
from autodo.tasks.model import Lane, NewTask, State
from autodo.testing import StubModelServer
from tests.support import finish_worker, script, start_worker, write_profiles

pytestmark = pytest.mark.slow


def decide(marker: str, lane: str, reason: str, question: str | None = None) -> dict[str, object]:
    arguments = {"lane": lane, "reason": reason} | ({"question": question} if question else {})
    return {
        "name": f"triage-{marker}",
        "match": {"tool": "final_result", "user": marker},
        "turn": [{"tool_calls": [{"name": "final_result", "arguments": arguments}]}],
    }


def test_triage_puts_each_task_in_the_lane_the_model_chose_with_its_reason(home: Path) -> None:
    rules = script(
        decide("contract", "human", "Only you can sign."),
        decide("colour", "ask", "Your call on colour.", "Which colour?"),
        {"name": "fails", "match": {"tool": "final_result", "user": "flaky"},
         "turn": [{"content": "x", "error": {"status": 500, "times": 99}}]},
    )  # fmt: skip
    with StubModelServer(rules) as stub:
        write_profiles(home, stub.url)
        desk = Desk()
        contract = desk.add(NewTask(title="sign the contract"))
        colour = desk.add(NewTask(title="pick a colour"))
        labelled = desk.add(NewTask(title="sign the contract too", labels=["lane:agent", "profile:default"]))
        flaky = desk.add(NewTask(title="flaky provider"))
        desk.move(labelled.id, Lane.HUMAN, "I will do it")  # the person overrides the label
        finish_worker(start_worker(home, "--until-settled"), home)
        triaged = len(stub.requests)

    human = desk.task(contract.id).task
    assert (human.lane, human.state, human.lane_reason, human.lane_set_by) == (
        Lane.HUMAN, State.YOURS, "Only you can sign.", "triage",
    )  # fmt: skip
    ask = desk.task(colour.id)
    assert (ask.task.lane, ask.task.state) == (Lane.ASK, State.WAITING)
    assert [(i.kind, i.prompt) for i in ask.inbox] == [(ItemKind.QUESTION, "Which colour?")]
    assert desk.task(labelled.id).task.lane_set_by == "person"
    failed = desk.task(flaky.id)
    assert failed.task.state is State.NEW  # a triage failure never guesses a lane
    assert any(e.kind == "triage.failed" for e in failed.events)
    assert triaged == 3  # the labelled task was never sent to the model
