"""Approvals: rules hold calls for the person; a decision is single-use and bound to the exact call."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from autodo.approvals import store as approvals
from autodo.approvals.rules import ApprovalRules
from autodo.desk import Desk
from autodo.errors import Conflict, InvalidInput
from autodo.inbox.model import ItemKind
from autodo.runs.store import create_run
from autodo.tasks.model import NewTask, State
from autodo.testing import StubModelServer
from tests.support import agent_rule, autodo, call, finish_worker, script, start_worker, wait_for, write_profiles

RULES = ApprovalRules(
    tools=["edit_file"], commands=[["git", "push"], ["rm"]], paths=["deploy", "*.env"], hosts=["*.example.com"]
)


@pytest.mark.parametrize(
    ("tool", "arguments", "held"),
    [
        ("edit_file", {"path": "a.txt", "old": "x", "new": "y"}, "every edit_file call"),
        ("run_command", {"argv": ["git", "push", "origin"]}, "`git push`"),
        ("run_command", {"argv": ["git", "pull"]}, None),
        ("run_command", {"argv": ["rm", "-rf", "build"]}, "`rm`"),
        ("write_file", {"path": "deploy/app.yml", "content": ""}, "'deploy'"),
        ("read_file", {"path": "./prod.env"}, "'*.env'"),
        ("write_file", {"path": "src/deploy.py", "content": ""}, None),
        ("run_command", {"argv": ["curl", "https://api.example.com/v1"]}, "api.example.com"),
        ("run_command", {"argv": ["curl", "https://example.org/"]}, None),
    ],
)
def test_rules_hold_calls_by_tool_command_path_and_host(tool: str, arguments: dict[str, Any], held: str) -> None:
    reason = RULES.reason(tool, arguments)
    assert (reason is None) if held is None else (held in (reason or ""))


def _pending_approval(desk: Desk, arguments: dict[str, Any], expires_after: float = 60) -> tuple[str, str]:
    task = desk.add(NewTask(title="deploy", labels=["lane:agent"]))
    with desk.engine.begin() as conn:
        run = create_run(conn, task.id, "default")
        assert run is not None
        item_id = approvals.request_approval(
            conn, key=f"{run.id}:1:call_1", run_id=run.id, task_id=task.id, tool="run_command",
            arguments=arguments, rule="commands starting with `git push` need approval", expires_after=expires_after,
        )  # fmt: skip
    assert item_id is not None
    return run.id, item_id


def _consume(desk: Desk, run_id: str, item_id: str, arguments: dict[str, Any], call_id: str = "call_1") -> str | None:
    with desk.engine.begin() as conn:
        key = f"{run_id}:1:{call_id}"
        return approvals.consume(conn, item_id, run_id=run_id, call_key=key, tool="run_command", arguments=arguments)


def test_an_approval_is_used_once_for_exactly_the_call_it_shows(desk: Desk) -> None:
    push = {"argv": ["git", "push", "origin", "main"]}
    run_id, item_id = _pending_approval(desk, push)
    [item] = desk.inbox()
    assert item.kind is ItemKind.APPROVAL and "git" in item.prompt and item.context["arguments"] == push
    desk.approve(item_id)
    assert _consume(desk, run_id, item_id, {"argv": ["git", "push", "--force"]}) is not None  # altered
    assert "different call" in (_consume(desk, run_id, item_id, push, call_id="call_2") or "")  # another call
    assert _consume(desk, run_id, item_id, push) is None
    assert "already used" in (_consume(desk, run_id, item_id, push) or "")  # replayed
    with pytest.raises(Conflict, match="single-use"):
        desk.approve(item_id)


def test_an_expired_request_is_refused_and_cannot_be_approved_late(desk: Desk) -> None:
    push = {"argv": ["git", "push"]}
    run_id, item_id = _pending_approval(desk, push, expires_after=0.2)
    time.sleep(0.3)
    with pytest.raises(Conflict, match="expired"):
        desk.approve(item_id)
    assert "expired" in (_consume(desk, run_id, item_id, push) or "")


def test_agents_cannot_decide_and_a_denial_needs_a_reason(desk: Desk) -> None:
    _, item_id = _pending_approval(desk, {"argv": ["git", "push"]})
    with pytest.raises(Conflict, match="only a person"):
        desk.approve(item_id, by="agent:default")
    with pytest.raises(InvalidInput, match="reason"):
        desk.deny(item_id, "  ")
    with pytest.raises(InvalidInput, match="autodo approve"):
        desk.answer(item_id, "yes")
    desk.deny(item_id, "not on a Friday")
    assert desk.item(item_id).answer == "denied: not on a Friday"


APPROVER = """
[profile.default.approvals]
tools = ["write_file"]
commands = [["rm"]]
"""


@pytest.mark.slow
def test_approve_for_the_run_and_deny_with_a_reason_the_model_reads(home: Path) -> None:
    rule = agent_rule(
        "guarded",
        "[guarded]",
        call("write_file", path="a.txt", content="a"),
        call("write_file", path="b.txt", content="b"),
        call("run_command", argv=["rm", "a.txt"]),
        call("finish", summary="done"),
    )
    with StubModelServer(script(rule)) as stub:
        write_profiles(home, stub.url, extra=APPROVER)
        desk = Desk()
        task = desk.add(NewTask(title="[guarded] files", labels=["lane:agent"]))
        worker = start_worker(home, "--until-settled")
        first = wait_for(lambda: [i for i in desk.inbox() if i.kind is ItemKind.APPROVAL], what="the first approval")
        assert desk.task(task.id).task.state is State.WAITING
        assert not (home / "workspaces" / task.id / "a.txt").exists()  # held until allowed
        autodo(home, "approve", first[0].id, "--for-run")
        second = wait_for(lambda: [i for i in desk.inbox() if i.kind is ItemKind.APPROVAL], what="the approval for rm")
        assert "rm" in second[0].prompt  # b.txt was covered by "for this run"
        autodo(home, "deny", second[0].id, "--reason", "keep a.txt, it is the original")
        finish_worker(worker, home)

    workspace = home / "workspaces" / task.id
    assert (workspace / "a.txt").read_text() == "a" and (workspace / "b.txt").read_text() == "b"
    results = [e.data["result"] for e in desk.task(task.id).events if e.kind == "tool.result"]
    assert any("keep a.txt, it is the original" in result for result in results)
    with desk.engine.connect() as conn:
        decisions = conn.execute(sa.text("select tool, decision, scope from approvals order by item_id")).all()
    assert [tuple(row) for row in decisions] == [("write_file", "approved", "run"), ("run_command", "denied", None)]
    assert desk.task(task.id).task.state is State.DONE
