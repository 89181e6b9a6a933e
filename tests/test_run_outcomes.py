"""How runs end: subtasks, hand-offs, reviews, and cancelling a running task."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from autodo.desk import Desk
from autodo.inbox.model import ItemKind
from autodo.tasks.model import Lane, NewTask, State
from autodo.testing import StubModelServer
from tests.support import agent_rule, autodo, call, finish_worker, script, start_worker, wait_for, write_profiles

pytestmark = pytest.mark.slow

REVIEWER = """
[profile.careful]
model = "openai:stub-agent"
base_url = "{url}"
review = true
"""


def test_subtasks_hand_offs_and_reviews(home: Path) -> None:
    rules = script(
        agent_rule(
            "child", "[child]", call("write_file", path="child.txt", content="c"), call("finish", summary="child")
        ),
        agent_rule(
            "parent",
            "[parent]",
            call("add_subtask", title="[child] follow-up", body="write child.txt"),
            call("finish", summary="split the work"),
        ),
        agent_rule("handoff", "[handoff]", call("hand_to_human", reason="Log in to the bank and approve the payment.")),
        agent_rule("reviewed", "[reviewed]", call("finish", summary="draft ready for review")),
    )
    with StubModelServer(rules) as stub:
        write_profiles(home, stub.url, extra=REVIEWER.format(url=stub.url))
        desk = Desk()
        parent = desk.add(NewTask(title="[parent] big job", labels=["lane:agent"]))
        handoff = desk.add(NewTask(title="[handoff] pay the invoice", labels=["lane:agent"]))
        reviewed = desk.add(NewTask(title="[reviewed] draft", labels=["lane:agent"], profile="careful"))
        finish_worker(start_worker(home, "--until-settled"), home)

    [child] = [task for task in desk.tasks() if task.parent_id == parent.id]
    assert (child.title, child.lane, child.lane_set_by, child.state) == (
        "[child] follow-up", Lane.AGENT, "agent", State.DONE,
    )  # fmt: skip
    assert (home / "workspaces" / child.id / "child.txt").read_text() == "c"
    handed = desk.task(handoff.id)
    assert (handed.task.state, handed.task.lane) == (State.YOURS, Lane.HUMAN)
    assert [(i.kind, i.prompt) for i in handed.inbox] == [
        (ItemKind.HANDOFF, "Log in to the bank and approve the payment."),
    ]
    review = desk.task(reviewed.id)
    assert review.task.state is State.REVIEW
    [item] = review.inbox
    desk.answer(item.id, "looks good")
    assert desk.task(reviewed.id).task.state is State.DONE


def test_cancelling_a_running_task_stops_its_run_and_keeps_the_workspace(home: Path) -> None:
    slow = agent_rule(
        "slow",
        "[slow]",
        call("write_file", path="before.txt", content="kept"),
        call("run_command", argv=["sleep", "6"]),
        call("write_file", path="after.txt", content="never"),
        call("finish", summary="should not get here"),
    )
    with StubModelServer(script(slow)) as stub:
        write_profiles(home, stub.url)
        desk = Desk()
        task = desk.add(NewTask(title="[slow] take your time", labels=["lane:agent"]))
        worker = start_worker(home)
        wait_for(lambda: (home / "workspaces" / task.id / "before.txt").exists(), what="the first write")
        autodo(home, "cancel", task.id)
        wait_for(lambda: desk.task(task.id).runs[0].state.value == "cancelled", what="the run to stop")
        worker.send_signal(signal.SIGINT)
        worker.wait(timeout=30)

    detail = desk.task(task.id)
    assert detail.task.state is State.CANCELLED
    assert (home / "workspaces" / task.id / "before.txt").read_text() == "kept"
    assert not (home / "workspaces" / task.id / "after.txt").exists()
