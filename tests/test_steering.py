"""Steering a running agent: steer, queue and interrupt messages; pause, resume and cancel."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from autodo.desk import Desk
from autodo.errors import Conflict, InvalidInput
from autodo.steering.model import Mode
from autodo.tasks.model import NewTask, State
from autodo.testing import StubModelServer
from tests.support import agent_rule, autodo, call, finish_worker, script, start_worker, wait_for, write_profiles

FINISH = call("finish", summary="finished")


def test_a_message_to_a_task_that_is_not_running_is_refused_with_the_reason(desk: Desk) -> None:
    task = desk.add(NewTask(title="not started", labels=["lane:human"]))
    with pytest.raises(Conflict, match=r"not running \(it is yours\).*--queue"):
        desk.say(task.id, "hurry up")
    with pytest.raises(InvalidInput, match="empty"):
        desk.say(task.id, "   ")
    kept = desk.say(task.id, "use the new logo", Mode.STEER, keep=True)
    assert (kept.run_id, kept.state.value) == (None, "pending")
    assert [e.kind for e in desk.task(task.id).events][-1] == "message.kept"
    desk.cancel(task.id)
    with pytest.raises(Conflict, match="not running"):
        desk.say(task.id, "too late", keep=True)


@pytest.mark.slow
def test_steer_arrives_with_the_next_model_request_and_is_in_the_transcript(home: Path) -> None:
    rule = agent_rule("steered", "[steered]", {**call("list_dir"), "delay": 4}, call("list_dir"), FINISH)
    with StubModelServer(script(rule)) as stub:
        write_profiles(home, stub.url)
        desk = Desk()
        task = desk.add(NewTask(title="[steered] tidy up", labels=["lane:agent"]))
        worker = start_worker(home, "--until-settled")
        wait_for(lambda: stub.requests, what="the first model request")
        desk.say(task.id, "only touch the docs folder")  # in-process: the CLI's start-up could miss the turn
        finish_worker(worker, home)
        requests = stub.requests

    assert "only touch the docs folder" not in requests[0].said
    assert "only touch the docs folder" in requests[1].said  # the very next request
    detail = desk.task(task.id)
    assert detail.task.state is State.DONE
    kinds = [e.kind for e in detail.events]
    assert kinds.index("message.sent") < kinds.index("message.delivered")


@pytest.mark.slow
def test_queue_waits_until_the_agent_would_finish_then_it_carries_on(home: Path) -> None:
    rule = agent_rule(
        "queued",
        "[queued]",
        {**call("list_dir"), "delay": 4},
        call("finish", summary="first finish"),
        call("finish", summary="after reading the follow-up"),
    )
    with StubModelServer(script(rule)) as stub:
        write_profiles(home, stub.url)
        desk = Desk()
        task = desk.add(NewTask(title="[queued] write notes", labels=["lane:agent"]))
        worker = start_worker(home, "--until-settled")
        wait_for(lambda: stub.requests, what="the first model request")
        desk.say(task.id, "also add a summary", Mode.QUEUE)
        finish_worker(worker, home)
        requests = stub.requests

    said = [r.said for r in requests]
    assert "also add a summary" not in said[1]  # not while the agent still had work
    assert "also add a summary" in said[2]  # delivered when it would have finished
    assert desk.task(task.id).task.result == "after reading the follow-up"


@pytest.mark.slow
def test_interrupt_cuts_a_slow_model_turn_short_and_the_message_leads_the_next_one(home: Path) -> None:
    rules = script(
        agent_rule("redirected", "[slowturn]", FINISH)
        | {"match": {"tool": "finish", "user": "[slowturn]", "said": "stop"}},
        agent_rule("slow", "[slowturn]", {**FINISH, "delay": 60}),
    )
    with StubModelServer(rules) as stub:
        write_profiles(home, stub.url)
        desk = Desk()
        task = desk.add(NewTask(title="[slowturn] think hard", labels=["lane:agent"]))
        worker = start_worker(home, "--until-settled")
        wait_for(lambda: stub.requests, what="the slow request")
        sent = time.monotonic()
        autodo(home, "say", task.id, "stop and finish now", "--mode", "interrupt")
        wait_for(lambda: len(stub.requests) >= 2, what="the request after the interrupt", timeout=20)
        finish_worker(worker, home, timeout=30)
        requests = stub.requests

    assert time.monotonic() - sent < 30  # far sooner than the 60 s turn
    assert [r.rule for r in requests] == ["slow", "redirected"]
    assert "stop and finish now" in requests[1].said
    detail = desk.task(task.id)
    assert detail.task.state is State.DONE
    assert "run.interrupted" in [e.kind for e in detail.events]


@pytest.mark.slow
def test_interrupt_stops_a_running_command_and_the_model_reads_why(home: Path) -> None:
    rule = agent_rule("command", "[command]", call("run_command", argv=["sleep", "59.25"]), FINISH)
    with StubModelServer(script(rule)) as stub:
        write_profiles(home, stub.url)
        desk = Desk()
        task = desk.add(NewTask(title="[command] wait for it", labels=["lane:agent"]))
        worker = start_worker(home, "--until-settled")
        wait_for(lambda: _running("sleep 59.25"), what="the command to start")
        autodo(home, "say", task.id, "no need to wait", "--mode", "interrupt")
        wait_for(lambda: not _running("sleep 59.25"), what="the command to be killed", timeout=10)
        finish_worker(worker, home, timeout=30)
        requests = stub.requests

    results = [e.data["result"] for e in desk.task(task.id).events if e.kind == "tool.result"]
    assert "stopped: the person interrupted the command" in results[0]
    assert "no need to wait" in requests[1].said
    assert desk.task(task.id).task.state is State.DONE


@pytest.mark.slow
def test_pause_cuts_a_command_short_and_resume_continues_from_the_last_step(home: Path) -> None:
    rule = agent_rule(
        "paused",
        "[paused]",
        call("write_file", path="one.txt", content="1"),
        call("run_command", argv=["sleep", "58.75"]),
        call("write_file", path="two.txt", content="2"),
        FINISH,
    )
    with StubModelServer(script(rule)) as stub:
        write_profiles(home, stub.url)
        desk = Desk()
        task = desk.add(NewTask(title="[paused] two files", labels=["lane:agent"]))
        worker = start_worker(home)
        try:
            wait_for(lambda: _running("sleep 58.75"), what="the command to start")
            autodo(home, "pause", task.id)
            wait_for(lambda: not _running("sleep 58.75"), what="the command to be killed", timeout=10)
            assert desk.task(task.id).task.state is State.PAUSED
            time.sleep(1)
            assert len(stub.requests) == 2  # nothing moves while paused
            with pytest.raises(Conflict, match="not running"):
                desk.say(task.id, "hello")
            autodo(home, "resume", task.id)
            wait_for(lambda: desk.task(task.id).task.state is State.DONE, what="the task to finish", timeout=60)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        requests = stub.requests

    workspace = home / "workspaces" / task.id
    assert (workspace / "one.txt").read_text() == "1" and (workspace / "two.txt").read_text() == "2"
    assert [r.turn for r in requests if r.status == 200] == [0, 1, 2, 3]  # no completed turn asked twice
    kinds = [e.kind for e in desk.task(task.id).events]
    assert kinds.count("run.paused") == 1 and "run.resumed" in kinds


def _running(command: str) -> bool:
    return subprocess.run(["pgrep", "-f", command], capture_output=True).returncode == 0
