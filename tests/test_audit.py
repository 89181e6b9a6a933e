"""The audit log: a hash chain that catches an edited, a deleted or a cut-off record, written by many at once."""

from __future__ import annotations

import json
import threading
from itertools import pairwise
from pathlib import Path

import httpx
import pytest

from autodo.approvals import store as approvals
from autodo.desk import Desk
from autodo.events import list_events
from autodo.policy import audit
from autodo.runs.store import create_run
from autodo.store.schema import audit_log, events
from autodo.tasks.model import NewTask
from autodo.testing import StubModelServer
from tests.support import ServedApp, agent_rule, autodo, call, finish_worker, script, start_worker, write_profiles

FAKE_LINE = '{"seq": 1, "kind": "approval.approved", "actor": "admin"}'
TITLE = f"Fix the build\n{FAKE_LINE}\r\x1b[2J\x1b]0;owned\x07\u202eevil"


def _append(desk: Desk, count: int, task_id: str | None = None) -> None:
    """A mix of records, each in its own transaction, as the producers write them."""
    kinds = [("tool.call", None), ("approval.approved", "allow"), ("approval.denied", "deny")]
    for n in range(count):
        kind, decision = kinds[n % len(kinds)]
        with desk.engine.begin() as conn:
            arguments = {"path": f"file{n}.txt", "content": "x" * n, "api_key": "sk-not-for-the-log"}
            audit.record(
                conn, kind, actor="agent:default", task_id=task_id, run_id="run-1", agent="default", tool="write_file",
                decision=decision, target=f"file{n}.txt", details=audit.describe_arguments(arguments),
            )  # fmt: skip


def _delete_records(desk: Desk, *seqs: int) -> None:
    with desk.engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.seq.in_(seqs)))


def _delete_head_events(desk: Desk, *seqs: int) -> None:
    with desk.engine.begin() as conn:
        for seq in seqs:
            conn.execute(events.delete().where(events.c.key.like(f"{audit.HEAD_EVENT}:{seq}:%")))


def test_a_mix_of_records_verifies_and_names_its_anchors(desk: Desk, home: Path) -> None:
    _append(desk, 7)
    verdict = audit.verify(desk.engine, home)
    assert verdict.ok and verdict.records == 7 and verdict.problem is None
    assert len(verdict.anchors) == 2  # the latest audit.head event and the head file
    head = json.loads((home / audit.HEAD_FILE).read_text())
    assert head["seq"] == 7 and head["hash"] == audit.list_records(desk.engine)[-1].hash


def test_a_missing_head_file_alone_is_a_note_not_a_failure(desk: Desk, home: Path) -> None:
    _append(desk, 2)
    (home / audit.HEAD_FILE).unlink()
    verdict = audit.verify(desk.engine, home)
    assert verdict.ok and verdict.records == 2 and "no head file" in verdict.notes[0]


def test_an_empty_log_verifies(desk: Desk, home: Path) -> None:
    verdict = audit.verify(desk.engine, home)
    assert verdict.ok and verdict.records == 0


def test_no_secret_value_reaches_the_log(desk: Desk) -> None:
    with desk.engine.begin() as conn:
        shown = audit.describe_arguments({"argv": ["curl", "-H", "Authorization: Bearer sk-live-123"], "token": "t0p"})
        audit.record(conn, "tool.call", actor="agent:default", tool="run_command", details=shown)
    [entry] = audit.list_records(desk.engine)
    text = entry.model_dump_json()
    assert "sk-live-123" not in text and "t0p" not in text and audit.REDACTED in text
    assert entry.details["args_sha256"] == shown["args_sha256"]


def test_editing_a_record_is_caught_at_its_number(desk: Desk, home: Path) -> None:
    _append(desk, 5)
    with desk.engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 3).values(details={"args": "nothing to see"}))
    verdict = audit.verify(desk.engine, home)
    assert not verdict.ok and verdict.bad_seq == 3 and "altered" in (verdict.problem or "")


def test_a_record_rewritten_with_a_fresh_hash_breaks_the_next_link(desk: Desk, home: Path) -> None:
    _append(desk, 5)
    [third] = [entry for entry in audit.list_records(desk.engine) if entry.seq == 3]
    forged = third.model_dump() | {"decision": "allow"}
    forged["hash"] = audit.record_hash(forged)
    with desk.engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 3).values(decision="allow", hash=forged["hash"]))
    verdict = audit.verify(desk.engine, home)
    assert not verdict.ok and verdict.bad_seq == 4 and "does not link to record 3" in (verdict.problem or "")


def test_deleting_a_middle_record_is_caught(desk: Desk, home: Path) -> None:
    _append(desk, 5)
    _delete_records(desk, 3)
    verdict = audit.verify(desk.engine, home)
    assert not verdict.ok and verdict.bad_seq == 3 and "missing" in (verdict.problem or "")


def test_cutting_records_off_the_end_is_caught(desk: Desk, home: Path) -> None:
    _append(desk, 5)
    _delete_records(desk, 4, 5)
    verdict = audit.verify(desk.engine, home)
    assert not verdict.ok and verdict.bad_seq == 4 and "cut off the end" in (verdict.problem or "")


def test_cutting_records_and_the_head_file_is_caught_by_the_audit_head_event(desk: Desk, home: Path) -> None:
    _append(desk, 5)
    _delete_records(desk, 4, 5)
    (home / audit.HEAD_FILE).unlink()
    verdict = audit.verify(desk.engine, home)
    assert not verdict.ok and verdict.bad_seq == 4 and "audit.head event" in (verdict.problem or "")


def test_cutting_records_and_their_events_is_caught_by_the_head_file(desk: Desk, home: Path) -> None:
    _append(desk, 5)
    _delete_records(desk, 4, 5)
    _delete_head_events(desk, 4, 5)
    verdict = audit.verify(desk.engine, home)
    assert not verdict.ok and verdict.bad_seq == 4 and "head file" in (verdict.problem or "")


def test_deleting_every_audit_head_event_is_caught(desk: Desk, home: Path) -> None:
    _append(desk, 3)
    _delete_head_events(desk, 1, 2, 3)
    verdict = audit.verify(desk.engine, home)
    assert not verdict.ok and "no audit.head event" in (verdict.problem or "")


def test_a_rolled_back_record_leaves_no_trace(desk: Desk, home: Path) -> None:
    _append(desk, 2)
    with pytest.raises(RuntimeError), desk.engine.begin() as conn:
        audit.record(conn, "tool.call", actor="agent:default")
        raise RuntimeError("the action failed")
    assert json.loads((home / audit.HEAD_FILE).read_text())["seq"] == 2
    assert audit.verify(desk.engine, home).ok


def test_a_repeated_key_is_recorded_once(desk: Desk, home: Path) -> None:
    for _ in range(2):
        with desk.engine.begin() as conn:
            audit.record(conn, "tool.call", actor="agent:default", key="run-1:transcript:3")
    assert len(audit.list_records(desk.engine)) == 1
    assert audit.verify(desk.engine, home).ok


def test_two_writers_appending_at_once_never_fork_the_chain(desk: Desk, home: Path) -> None:
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def writer(name: str) -> None:
        start.wait()
        try:
            for n in range(25):
                with desk.engine.begin() as conn:
                    audit.record(conn, "tool.call", actor=f"agent:{name}", target=str(n))
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    records = audit.list_records(desk.engine, limit=100)
    assert [entry.seq for entry in records] == list(range(1, 51))
    assert all(entry.prev_hash == before.hash for before, entry in pairwise(records))
    verdict = audit.verify(desk.engine, home)
    assert verdict.ok and verdict.records == 50


def test_control_characters_and_a_fake_json_line_in_a_task_title_are_escaped(desk: Desk, home: Path) -> None:
    task = desk.add(NewTask(title=TITLE, body=TITLE, labels=["lane:human"]))
    with desk.engine.begin() as conn:
        details = audit.describe_arguments({"title": TITLE, "body": task.body})
        audit.record(conn, "tool.call", actor="agent:default", task_id=task.id, target=task.title, details=details)
    shown = autodo(home, "audit", "show", "--task", task.id).stdout
    assert shown.count("\n") == 1 and FAKE_LINE not in shown.splitlines()
    assert "\\n{" in shown and "\\x1b[2J" in shown and "\\u202e" in shown
    assert not any(char in shown for char in "\r\x1b\x07\u202e")
    [entry] = json.loads(autodo(home, "audit", "show", "--json").stdout)
    assert all(char not in json.dumps(entry, ensure_ascii=False) for char in "\r\x1b\x07\u202e")
    assert entry["target"].startswith("Fix the build {") and "\\x1b[2J" in entry["target"]


def test_audit_show_filters_by_task_agent_and_tool(desk: Desk, home: Path) -> None:
    task = desk.add(NewTask(title="one", labels=["lane:human"]))
    _append(desk, 2, task_id=task.id)
    with desk.engine.begin() as conn:
        audit.record(conn, "tool.call", actor="agent:reviewer", agent="reviewer", tool="read_file")
    assert len(audit.list_records(desk.engine, task_id=task.id)) == 2
    assert [entry.tool for entry in audit.list_records(desk.engine, agent="reviewer")] == ["read_file"]
    lines = autodo(home, "audit", "show", "--tool", "write_file", "--limit", "1").stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("2  ")


def test_an_approval_decision_is_recorded_with_who_which_run_and_the_arguments_hash(desk: Desk) -> None:
    push = {"argv": ["git", "push", "origin", "main"], "password": "hunter2"}
    task = desk.add(NewTask(title="deploy", labels=["lane:agent"]))
    with desk.engine.begin() as conn:
        run = create_run(conn, task.id, "default")
        assert run is not None
        item_id = approvals.request_approval(
            conn, key=f"{run.id}:1:call_1", run_id=run.id, task_id=task.id, tool="run_command", arguments=push,
            rule="commands starting with `git push` need approval", expires_after=60,
        )  # fmt: skip
    assert item_id is not None
    desk.deny(item_id, "not on a Friday", by="alice")
    with desk.engine.begin() as conn:
        approvals.consume(
            conn, item_id, run_id=run.id, call_key=f"{run.id}:1:call_1", tool="run_command", arguments=push
        )
    requested, denied, refused = audit.list_records(desk.engine, task_id=task.id)
    assert (requested.kind, requested.decision) == ("approval.requested", "ask")
    assert (denied.kind, denied.decision, denied.actor) == ("approval.denied", "deny", "alice")
    assert (denied.run_id, denied.agent, denied.tool) == (run.id, "default", "run_command")
    assert denied.details["args_sha256"] == audit.arguments_sha256(push)
    assert denied.details["reason"] == "not on a Friday" and "hunter2" not in denied.model_dump_json()
    assert (refused.kind, refused.decision) == ("approval.refused", "deny")


def test_a_refused_api_request_is_recorded_without_the_token(home: Path) -> None:
    with ServedApp() as served:
        wrong = httpx.get(f"{served.url}/api/v1/board", headers={"Authorization": "Bearer wrong-secret-1"})
        link = httpx.get(f"{served.url}/?token=wrong-secret-2", follow_redirects=False)
        missing = httpx.post(f"{served.url}/api/v1/tasks", json={"title": "t"})
        engine = served.app.state.desk.engine
    assert [wrong.status_code, link.status_code, missing.status_code] == [401, 401, 401]
    records = audit.list_records(engine)
    assert [(entry.kind, entry.decision, entry.target) for entry in records] == [
        ("api.refused", "deny", "GET /api/v1/board"),
        ("api.refused", "deny", "GET /"),
        ("api.refused", "deny", "POST /api/v1/tasks"),
    ]
    assert [entry.details["presented"] for entry in records] == [["authorization"], ["query"], []]
    assert all(entry.actor.startswith("client:127.0.0.1:") for entry in records)
    logged = json.dumps([entry.model_dump() for entry in records] + [e.model_dump() for e in list_events(engine)])
    assert "wrong-secret" not in logged


def test_autodo_audit_verify_exits_0_on_a_good_chain_and_1_on_a_bad_one(desk: Desk, home: Path) -> None:
    _append(desk, 4)
    good = autodo(home, "audit", "verify")
    assert good.returncode == 0 and "OK: 4 records" in good.stdout
    with desk.engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 2).values(actor="someone else"))
    bad = autodo(home, "audit", "verify", check=False)
    assert bad.returncode == 1 and "BROKEN at record 2" in bad.stdout
    report = json.loads(autodo(home, "audit", "verify", "--json", check=False).stdout)
    assert report["ok"] is False and report["bad_seq"] == 2


@pytest.mark.slow
def test_a_runs_tool_calls_are_recorded_once_each_with_their_arguments_hash(home: Path) -> None:
    rule = agent_rule(
        "audited", "[audited]", call("write_file", path="a.txt", content="hello"), call("finish", summary="done")
    )
    with StubModelServer(script(rule)) as stub:
        write_profiles(home, stub.url)
        desk = Desk()
        task = desk.add(NewTask(title="[audited] write a file", labels=["lane:agent"]))
        finish_worker(start_worker(home, "--until-settled"), home)
    results = [event for event in desk.task(task.id).events if event.kind == "tool.result"]
    calls = audit.list_records(desk.engine, task_id=task.id, tool="write_file")
    assert len(calls) == 1 == len([event for event in results if event.data["tool"] == "write_file"])
    [written] = calls
    assert (written.kind, written.agent, written.details["outcome"]) == ("tool.call", "default", "returned")
    assert written.details["args_sha256"] == audit.arguments_sha256({"path": "a.txt", "content": "hello"})
    assert audit.verify(desk.engine, home).ok  # the worker process wrote the head file
