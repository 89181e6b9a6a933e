"""Budgets that ask instead of kill: at a limit the run waits for the person to raise it or stop."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from autodo.desk import Desk
from autodo.errors import InvalidInput
from autodo.inbox.model import InboxItem, ItemKind
from autodo.runs.budget import Budget, Price, Spent, effective, exceeded, parse_budget, turn_cost
from autodo.runs.model import RunState
from autodo.tasks.model import NewTask, State
from autodo.testing import StubModelServer
from tests.support import agent_rule, autodo, call, finish_worker, script, start_worker, wait_for, write_profiles


def test_limits_are_read_from_text_and_bad_ones_say_how_to_write_them() -> None:
    assert parse_budget("turns=60 usd=2.5") == {"turns": 60, "usd": 2.5}
    assert parse_budget("tokens=1000, minutes=3") == {"tokens": 1000, "minutes": 3.0}
    for bad, hint in [("turns=0", "greater than or equal to 1"), ("dollars=3", "Extra inputs"), ("lots", "e.g.")]:
        with pytest.raises(InvalidInput, match=hint):
            parse_budget(bad)


def test_the_task_budget_wins_field_by_field_and_each_limit_is_named() -> None:
    budget = effective(Budget(turns=40, tokens=1000), {"turns": 5})
    assert (budget.turns, budget.tokens) == (5, 1000)
    assert exceeded(budget, Spent(turns=5)) == "turns: 5 of 5 used"
    assert exceeded(budget, Spent(turns=1, tokens=1200)) == "tokens: 1,200 of 1,000 used"
    assert exceeded(Budget(usd=1), Spent(usd=1.5)) == "money: $1.5000 of $1.00 spent"
    assert "price is unknown" in (exceeded(Budget(usd=1), Spent(usd=None)) or "")
    assert exceeded(Budget(minutes=2), Spent(minutes=2.5)) == "time: 2.5 of 2 minutes worked"
    assert exceeded(Budget(turns=10, usd=5), Spent(turns=3, usd=0.1)) is None


def test_a_turn_costs_the_profile_price_else_the_price_table_else_unknown() -> None:
    from pydantic_ai.messages import ModelResponse, TextPart
    from pydantic_ai.usage import RequestUsage

    usage = RequestUsage(input_tokens=1_000_000, output_tokens=100_000)
    known = ModelResponse(parts=[TextPart("x")], usage=usage, model_name="gpt-4o", provider_name="openai")
    unknown = ModelResponse(parts=[TextPart("x")], usage=usage, model_name="stub-agent", provider_name="openai")
    assert turn_cost(Price(input=1, output=10), SimpleNamespace(usage=usage)) == pytest.approx(2.0)  # type: ignore[arg-type]
    assert (turn_cost(None, known) or 0) > 0
    assert turn_cost(None, unknown) is None


BUDGETED = """
[profile.priced]
model = "openai:stub-agent"
base_url = "{url}"
price = {{ input = 1.0, output = 2.0 }}
budget = {{ usd = 50 }}
"""


@pytest.mark.slow
def test_at_its_budget_a_run_asks_then_carries_on_or_stops_cleanly(home: Path) -> None:
    turns = [call("list_dir") for _ in range(3)] + [call("finish", summary="all done")]
    rules = script(agent_rule("raised", "[raised]", *turns), agent_rule("stopped", "[stopped]", *turns))
    with StubModelServer(rules) as stub:
        write_profiles(home, stub.url, extra_budget_turns=2, extra=BUDGETED.format(url=stub.url))
        desk = Desk()
        raised = desk.add(NewTask(title="[raised] look around", labels=["lane:agent"]))
        stopped = desk.add(NewTask(title="[stopped] look around", labels=["lane:agent"], profile="priced"))
        autodo(home, "budget", stopped.id, "turns=1")  # the task's own limit wins over the profile's
        worker = start_worker(home, "--until-settled")
        asks = wait_for(lambda: _budget_items(desk, 2), what="both runs to reach their budgets")
        by_task = {item.task_id: item for item in asks}
        assert "turns: 2 of 2 used" in by_task[raised.id].prompt
        assert "turns: 1 of 1 used" in by_task[stopped.id].prompt
        assert desk.task(raised.id).task.state is State.WAITING
        autodo(home, "answer", by_task[raised.id].id, "turns=10")
        autodo(home, "answer", by_task[stopped.id].id, "stop")
        finish_worker(worker, home)
        requests = stub.requests

    done = desk.task(raised.id)
    assert (done.task.state, done.task.result, done.task.budget) == (State.DONE, "all done", {"turns": 10})
    assert done.runs[0].cost_usd is None  # the stub's model has no known price: unknown, not zero
    ended = desk.task(stopped.id)
    assert ended.task.state is State.CANCELLED and "stopped at its budget" in (ended.task.result or "")
    assert ended.runs[0].state is RunState.CANCELLED
    assert (ended.runs[0].cost_usd or 0) > 0  # priced by the profile's table
    assert sum(1 for r in requests if r.rule == "stopped") == 1
    assert sum(1 for r in requests if r.rule == "raised") == 4


def _budget_items(desk: Desk, count: int) -> list[InboxItem] | None:
    items = [item for item in desk.inbox() if item.kind is ItemKind.BUDGET]
    return items if len(items) == count else None
