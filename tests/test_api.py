"""The REST API over real HTTP: service functions as JSON, problem documents, Symphony's shapes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dirty_equals import IsStr

from autodo.desk import Desk
from autodo.inbox.model import ItemKind
from tests.support import ServedApp


@pytest.fixture
def served(home: Path) -> Iterator[ServedApp]:
    with ServedApp() as served:
        yield served


def test_a_task_goes_in_and_comes_back_out(served: ServedApp) -> None:
    with served.client() as client:
        created = client.post("/api/v1/tasks", json={"title": "  Write   the notes ", "labels": ["lane:human"]})
        assert created.status_code == 201, created.text
        task = created.json()
        assert task["title"] == "Write the notes" and task["source"] == "api" and task["state"] == "yours"
        assert [t["id"] for t in client.get("/api/v1/tasks").json()] == [task["id"]]
        assert client.get("/api/v1/tasks", params={"state": "done"}).json() == []
        detail = client.get(f"/api/v1/tasks/{task['id']}").json()
        assert detail["task"]["id"] == task["id"] and detail["events"][0]["kind"] == "task.created"
        done = client.post(f"/api/v1/tasks/{task['id']}/done", json={"note": "written"}).json()
        assert done["state"] == "done" and done["result"] == "written"


def test_errors_are_problem_documents_with_stable_codes(served: ServedApp) -> None:
    with served.client() as client:
        missing = client.get("/api/v1/tasks/01JUNKJUNKJUNKJUNKJUNKJUNK")
        empty = client.post("/api/v1/tasks", json={"title": "   "})
        lane = client.post("/api/v1/tasks", json={"title": "t", "labels": ["lane:nowhere"]})
        malformed = client.post("/api/v1/tasks", json={"title": 3, "priority": "asap"})
        task = client.post("/api/v1/tasks", json={"title": "t", "labels": ["lane:human"]}).json()
        client.post(f"/api/v1/tasks/{task['id']}/done", json={})
        again = client.post(f"/api/v1/tasks/{task['id']}/cancel")
        nul = client.post("/api/v1/tasks", json={"title": "a\u0000b"})
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert missing.json() == {
        "type": "urn:autodo:error:not_found",
        "title": "not found",
        "status": 404,
        "detail": IsStr(regex=r"no task 01JUNK.*autodo ls.*"),
        "code": "not_found",
        "error": {"code": "not_found", "message": missing.json()["detail"]},
    }
    assert (empty.status_code, empty.json()["code"]) == (422, "invalid_request")
    assert (lane.status_code, lane.json()["code"]) == (400, "invalid_input")
    assert "unknown lane 'nowhere'" in lane.json()["detail"]
    assert (malformed.status_code, malformed.json()["code"]) == (422, "invalid_request")
    assert {e["field"] for e in malformed.json()["errors"]} == {"body.title", "body.priority"}
    assert (again.status_code, again.json()["code"]) == (409, "conflict")
    assert (nul.status_code, nul.json()["code"]) == (422, "invalid_request")
    assert "NUL" in nul.json()["detail"]


def test_a_question_is_answered_through_the_inbox(served: ServedApp) -> None:
    desk = Desk()
    with served.client() as client:
        task = client.post("/api/v1/tasks", json={"title": "plan the launch", "labels": ["lane:ask"]}).json()
        [item] = client.get("/api/v1/inbox").json()
        assert (item["task_id"], item["kind"]) == (task["id"], ItemKind.QUESTION.value)
        answered = client.post(f"/api/v1/inbox/{item['id']}/answer", json={"text": "launch on Monday"})
        assert answered.json()["state"] == "answered"
        twice = client.post(f"/api/v1/inbox/{item['id']}/answer", json={"text": "Tuesday"})
        approve = client.post(f"/api/v1/inbox/{item['id']}/approve", json={})
    assert twice.status_code == 409  # exactly one answer wins
    assert approve.status_code == 400 and "not an approval" in approve.json()["detail"]
    moved = desk.task(task["id"]).task
    assert moved.lane == "agent" and "launch on Monday" in moved.context


def test_cards_and_team_show_every_task_and_profile(served: ServedApp) -> None:
    with served.client() as client:
        first = client.post("/api/v1/tasks", json={"title": "mine", "labels": ["lane:human"]}).json()
        second = client.post("/api/v1/tasks", json={"title": "theirs", "labels": ["lane:agent"]}).json()
        client.post(f"/api/v1/tasks/{second['id']}/blockers", json={"blocked_by": [first["id"]]})
        cards = {card["task"]["id"]: card for card in client.get("/api/v1/cards").json()}
        team = client.get("/api/v1/team").json()
    assert cards[first["id"]]["column"] == "Yours"
    assert cards[second["id"]]["column"] == "Agents working" and cards[second["id"]]["task"]["state"] == "blocked"
    [default] = [p for p in team["profiles"] if p["name"] == "default"]
    assert default["running"] == [] and default["tokens_today"] == 0


def test_symphony_state_and_issue_have_the_spec_shapes(served: ServedApp) -> None:
    with served.client() as client:
        task = client.post("/api/v1/tasks", json={"title": "an issue", "labels": ["lane:agent"]}).json()
        state = client.get("/api/v1/state").json()
        issue = client.get(f"/api/v1/{task['id']}").json()
        unknown = client.get("/api/v1/NOPE-1")
        refresh = client.post("/api/v1/refresh", json={})
        wrong = [
            client.get("/api/v1/refresh"),
            client.post("/api/v1/state"),
            client.delete(f"/api/v1/{task['id']}"),
        ]
    assert set(state) >= {"generated_at", "counts", "running", "retrying", "codex_totals", "rate_limits"}
    assert state["counts"] == {"running": 0, "retrying": 0}
    assert set(state["codex_totals"]) == {"input_tokens", "output_tokens", "total_tokens", "seconds_running"}
    assert issue["issue_identifier"] == task["id"] and issue["status"] == "queued"
    assert issue["workspace"]["path"].endswith(task["id"]) and issue["recent_events"][0]["event"] == "task.created"
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "issue_not_found"
    assert refresh.status_code == 202 and refresh.json()["queued"] is True
    assert [r.status_code for r in wrong] == [405, 405, 405]


def test_changes_show_the_files_in_the_workspace_with_diffs(served: ServedApp, home: Path) -> None:
    with served.client() as client:
        task = client.post("/api/v1/tasks", json={"title": "write", "labels": ["lane:human"]}).json()
        before = client.get(f"/api/v1/tasks/{task['id']}/changes").json()
        workspace = home / "workspaces" / task["id"]
        workspace.mkdir(parents=True)
        (workspace / "notes.md").write_text("hello\n")
        after = client.get(f"/api/v1/tasks/{task['id']}/changes").json()
    assert before["files"] == []
    assert after["files"] == [{"path": "notes.md", "status": "added", "diff": IsStr(regex=r"(?s).*\+hello\n$")}]
