"""Tasks: validation, lanes, dependencies and cycles."""

from __future__ import annotations

import pytest

from autodo.desk import Desk
from autodo.errors import Conflict, DependencyCycle, InvalidInput, NotFound
from autodo.inbox.model import ItemKind
from autodo.tasks.model import Lane, NewTask, State


def test_a_new_task_waits_untriaged_in_the_inbox_column(desk: Desk) -> None:
    task = desk.add(NewTask(title="  Write   a haiku  "))
    assert (task.title, task.state, task.lane, task.column) == ("Write a haiku", State.NEW, None, "Inbox")


@pytest.mark.parametrize("title", ["", "   ", "\n\t"])
def test_an_empty_title_is_refused(desk: Desk, title: str) -> None:
    with pytest.raises(InvalidInput, match="title is empty"):
        desk.add(NewTask(title=title))
    assert desk.tasks() == []


def test_a_huge_title_is_refused_with_the_limit(desk: Desk) -> None:
    with pytest.raises(InvalidInput, match="under 500"):
        desk.add(NewTask(title="x" * 501))
    assert desk.tasks() == []


def test_an_unknown_priority_is_refused(desk: Desk) -> None:
    with pytest.raises(InvalidInput, match="urgent, high, normal, low"):
        desk.add(NewTask(title="t", priority="p0"))


def test_an_unknown_blocker_is_refused_and_nothing_is_written(desk: Desk) -> None:
    with pytest.raises(NotFound, match="no task NOPE"):
        desk.add(NewTask(title="t", blocked_by=["NOPE"]))
    assert desk.tasks() == []


def test_an_unknown_task_id_says_how_to_find_ids(desk: Desk) -> None:
    with pytest.raises(NotFound, match="autodo ls"):
        desk.task("01UNKNOWN")


def test_a_lane_label_sets_the_lane_without_triage(desk: Desk) -> None:
    task = desk.add(NewTask(title="t", labels=["lane:agent"]))
    assert (task.lane, task.lane_set_by, task.state) == (Lane.AGENT, "label", State.QUEUED)


def test_an_unknown_lane_label_is_refused(desk: Desk) -> None:
    with pytest.raises(InvalidInput, match="use agent, ask or human"):
        desk.add(NewTask(title="t", labels=["lane:robot"]))
    assert desk.tasks() == []


def test_a_task_waits_until_every_blocker_is_done(desk: Desk) -> None:
    first = desk.add(NewTask(title="first", labels=["lane:human"]))
    second = desk.add(NewTask(title="second", labels=["lane:human"]))
    third = desk.add(NewTask(title="third", labels=["lane:agent"], blocked_by=[first.id, second.id]))
    assert third.state is State.BLOCKED
    desk.done(first.id)
    assert desk.task(third.id).task.state is State.BLOCKED
    desk.done(second.id)
    assert desk.task(third.id).task.state is State.QUEUED


def test_a_dependency_cycle_is_refused_and_named(desk: Desk) -> None:
    a = desk.add(NewTask(title="a"))
    b = desk.add(NewTask(title="b", blocked_by=[a.id]))
    c = desk.add(NewTask(title="c", blocked_by=[b.id]))
    with pytest.raises(DependencyCycle) as caught:
        desk.block(a.id, [c.id])
    assert f"{a.id} → {c.id} → {b.id} → {a.id}" in caught.value.message
    assert desk.task(a.id).task.blocked_by == []


def test_a_task_cannot_wait_for_itself(desk: Desk) -> None:
    a = desk.add(NewTask(title="a"))
    with pytest.raises(DependencyCycle, match="itself"):
        desk.block(a.id, [a.id])


def test_the_human_lane_hands_the_task_over_through_the_inbox(desk: Desk) -> None:
    task = desk.add(NewTask(title="sign the contract"))
    moved = desk.move(task.id, Lane.HUMAN, "needs your signature")
    assert (moved.state, moved.lane_set_by) == (State.YOURS, "person")
    [item] = desk.inbox()
    assert (item.kind, item.task_id, item.prompt) == (ItemKind.HANDOFF, task.id, "needs your signature")


def test_answering_an_ask_lane_question_moves_the_task_to_agents_with_the_answer(desk: Desk) -> None:
    task = desk.add(NewTask(title="pick colours", labels=["lane:ask"]))
    [item] = desk.inbox()
    desk.answer(item.id, "teal")
    after = desk.task(task.id).task
    assert (after.lane, after.state) == (Lane.AGENT, State.QUEUED)
    assert "A: teal" in after.context
    assert desk.inbox() == []


def test_exactly_one_answer_wins(desk: Desk) -> None:
    desk.add(NewTask(title="pick colours", labels=["lane:ask"]))
    [item] = desk.inbox()
    desk.answer(item.id, "teal")
    with pytest.raises(Conflict, match="already answered"):
        desk.answer(item.id, "red")
    assert desk.item(item.id).answer == "teal"


def test_an_empty_answer_is_refused_and_the_question_stays_open(desk: Desk) -> None:
    desk.add(NewTask(title="pick colours", labels=["lane:ask"]))
    [item] = desk.inbox()
    with pytest.raises(InvalidInput, match="answer is empty"):
        desk.answer(item.id, "  ")
    assert [i.id for i in desk.inbox()] == [item.id]


def test_moving_a_task_withdraws_its_open_inbox_items(desk: Desk) -> None:
    task = desk.add(NewTask(title="x", labels=["lane:human"]))
    desk.move(task.id, Lane.AGENT)
    assert desk.inbox() == []
    assert desk.task(task.id).task.state is State.QUEUED


def test_a_finished_task_cannot_be_moved_or_finished_again(desk: Desk) -> None:
    task = desk.add(NewTask(title="x", labels=["lane:human"]))
    desk.done(task.id, "did it")
    with pytest.raises(Conflict, match="already done"):
        desk.done(task.id)
    with pytest.raises(Conflict, match="is done"):
        desk.move(task.id, Lane.AGENT)


def test_cancel_keeps_dependents_blocked(desk: Desk) -> None:
    first = desk.add(NewTask(title="first", labels=["lane:agent"]))
    second = desk.add(NewTask(title="second", labels=["lane:agent"], blocked_by=[first.id]))
    desk.cancel(first.id)
    assert desk.task(first.id).task.state is State.CANCELLED
    assert desk.task(second.id).task.state is State.BLOCKED


def test_tasks_are_listed_by_priority_then_age(desk: Desk) -> None:
    low = desk.add(NewTask(title="low", priority="low"))
    urgent = desk.add(NewTask(title="urgent", priority="urgent"))
    normal = desk.add(NewTask(title="normal"))
    assert [t.id for t in desk.tasks()] == [urgent.id, normal.id, low.id]


def test_an_unknown_profile_is_refused_with_the_known_ones(desk: Desk) -> None:
    with pytest.raises(NotFound, match="known profiles: default"):
        desk.add(NewTask(title="t", profile="nobody"))
