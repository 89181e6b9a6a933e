"""A provider answering errors, garbage, slowly, or with bad tool calls: clear outcomes, consistent state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autodo.desk import Desk
from autodo.tasks.model import NewTask, State
from autodo.testing import StubModelServer
from tests.support import agent_rule, call, finish_worker, script, start_worker, write_profiles

pytestmark = pytest.mark.slow

FINISH = call("finish", summary="finished")


def feedback_to_model(events: list[Any]) -> list[Any]:
    """What the model was told about its tool calls (results and retry prompts)."""
    return [e.data for e in events if e.kind in ("tool.result", "tool.retry")]


def work_one(home: Path, turns: list[dict[str, Any]], **profile: Any) -> tuple[Desk, str, list[Any]]:
    """Run one agent task to the end against a stub answering ``turns``; returns the desk, task id, requests."""
    with StubModelServer(script(agent_rule("only", "[only]", *turns))) as stub:
        write_profiles(home, stub.url, **{"max_retries": 2, **profile})
        desk = Desk()
        task = desk.add(NewTask(title="[only] do it", labels=["lane:agent"]))
        finish_worker(start_worker(home, "--until-settled"), home)
        return desk, task.id, stub.requests


def test_a_rejected_key_fails_the_task_and_says_to_check_the_key(home: Path) -> None:
    desk, task_id, requests = work_one(home, [{**FINISH, "error": {"status": 401, "times": 99}}])
    task = desk.task(task_id).task
    assert task.state is State.FAILED
    assert "rejected the API key" in (task.result or "")
    assert len(requests) == 1  # a 401 is not retried


def test_rate_limits_are_retried_with_backoff_and_the_task_completes(home: Path) -> None:
    desk, task_id, requests = work_one(home, [{**FINISH, "error": {"status": 429, "times": 2, "retry_after": 0}}])
    assert desk.task(task_id).task.state is State.DONE
    assert [r.status for r in requests] == [429, 429, 200]


def test_a_server_error_that_persists_fails_the_task_after_retries(home: Path) -> None:
    desk, task_id, requests = work_one(home, [{**FINISH, "error": {"status": 500, "times": 99}}], max_retries=1)
    task = desk.task(task_id).task
    assert task.state is State.FAILED
    assert "HTTP 500" in (task.result or "")
    assert len(requests) == 2


def test_a_garbage_response_fails_the_task_with_a_clear_reason(home: Path) -> None:
    desk, task_id, _ = work_one(home, [{**FINISH, "malformed": {"times": 99}}], max_retries=0)
    task = desk.task(task_id).task
    assert task.state is State.FAILED
    assert "model provider" in (task.result or "")


def test_a_slow_provider_times_out_and_fails_the_task(home: Path) -> None:
    desk, task_id, requests = work_one(home, [{**FINISH, "delay": 2}], request_timeout=0.3, max_retries=1)
    task = desk.task(task_id).task
    assert task.state is State.FAILED
    assert "did not answer in time" in (task.result or "")
    assert len(requests) == 2


def test_a_tool_call_with_bad_json_is_sent_back_to_the_model_to_fix(home: Path) -> None:
    bad = {"tool_calls": [{"name": "write_file", "arguments": "{not json"}]}
    good = call("write_file", path="ok.txt", content="fixed\n")
    desk, task_id, _ = work_one(home, [bad, good, FINISH])
    detail = desk.task(task_id)
    assert detail.task.state is State.DONE
    assert "Invalid JSON" in str(feedback_to_model(detail.events))
    assert (home / "workspaces" / task_id / "ok.txt").read_text() == "fixed\n"


def test_an_unknown_tool_is_reported_to_the_model_which_recovers(home: Path) -> None:
    desk, task_id, _ = work_one(home, [call("delete_everything"), FINISH])
    detail = desk.task(task_id)
    assert detail.task.state is State.DONE
    assert "delete_everything" in str(feedback_to_model(detail.events))


def test_a_file_tool_escaping_the_workspace_gets_an_error_result_not_a_write(home: Path) -> None:
    desk, task_id, _ = work_one(home, [call("write_file", path="../escape.txt", content="x"), FINISH])
    detail = desk.task(task_id)
    assert detail.task.state is State.DONE
    result = next(e for e in detail.events if e.kind == "tool.result")
    assert "outside the task workspace" in result.data["result"]
    assert not (home / "workspaces" / "escape.txt").exists()
