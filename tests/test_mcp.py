"""MCP: another agent files work and reads its results with the official MCP client, over stdio and HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent, Tool
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from autodo.desk import Desk
from autodo.events import append_event
from autodo.server.mcp import CLIP, build_mcp_server, http_app
from autodo.testing import StubModelServer
from tests.support import (
    AUTODO,
    ServedApp,
    agent_rule,
    call,
    environment,
    finish_worker,
    script,
    start_worker,
    wait_for,
    write_profiles,
)

TOOLS = {"add_task", "list_tasks", "get_task", "answer", "approve", "deny", "steer", "cancel", "inbox"}


class Session:
    """A connected MCP client, driven from plain test code."""

    def __init__(self, portal: BlockingPortal, client: Client) -> None:
        self.portal = portal
        self.client = client

    def tools(self) -> dict[str, Tool]:
        listing = self.portal.call(self.client.list_tools)
        return {tool.name: tool for tool in listing.tools}

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """The tool's structured result; a tool error fails the test."""
        result = self._call(tool, arguments)
        assert not result.is_error, result.content
        structured: dict[str, Any] | None = result.structured_content
        assert structured is not None
        return structured

    def error(self, tool: str, **arguments: Any) -> str:
        """The text of the tool error the call must return."""
        result = self._call(tool, arguments)
        assert result.is_error, result.structured_content
        [content] = result.content
        assert isinstance(content, TextContent)
        return content.text

    def _call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        result: CallToolResult = self.portal.call(self.client.call_tool, tool, arguments)
        return result


@contextmanager
def connected(client: AbstractAsyncContextManager[Client]) -> Iterator[Session]:
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(client) as entered:
        yield Session(portal, entered)


@asynccontextmanager
async def over_http(url: str, token: str | None, mode: str = "auto") -> AsyncIterator[Client]:
    """The SDK's streamable HTTP client, sending the API token as a Bearer header."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, read_timeout_seconds=30) as client,
    ):
        yield client


@pytest.fixture
def stdio(home: Path) -> Iterator[Session]:
    """``autodo mcp`` as a separate process, as an MCP client starts it."""
    server = StdioServerParameters(command=AUTODO[0], args=[*AUTODO[1:], "mcp"], env=environment(home))
    with connected(Client(server, read_timeout_seconds=30)) as session:
        yield session


@pytest.fixture
def in_process(desk: Desk) -> Iterator[Session]:
    with connected(Client(build_mcp_server(desk), read_timeout_seconds=30)) as session:
        yield session


@pytest.fixture
def served(home: Path) -> Iterator[ServedApp]:
    with ServedApp() as served:
        yield served


def test_the_stdio_server_lists_the_nine_tools_with_typed_inputs(stdio: Session) -> None:
    tools = stdio.tools()
    assert set(tools) == TOOLS
    add = tools["add_task"].input_schema
    assert add["required"] == ["title"]
    assert add["properties"]["title"]["type"] == "string" and add["properties"]["title"]["description"]
    assert add["properties"]["priority"]["enum"] == ["urgent", "high", "normal", "low"]
    assert add["properties"]["labels"]["items"] == {"type": "string"}
    assert "lane:agent" in add["properties"]["labels"]["description"]
    steer = tools["steer"].input_schema
    assert steer["required"] == ["task_id", "text"]
    assert steer["$defs"]["Mode"]["enum"] == ["steer", "queue", "interrupt"]
    assert tools["approve"].input_schema["properties"]["for_run"]["type"] == "boolean"
    assert tools["get_task"].output_schema is not None and "task" in tools["get_task"].output_schema["properties"]
    assert tools["list_tasks"].annotations is not None and tools["list_tasks"].annotations.read_only_hint


def test_a_task_filed_over_stdio_is_listed_and_read_back(stdio: Session) -> None:
    task = stdio.call("add_task", title="  Write the   release notes ", body="for 0.2", labels=["lane:human"])
    listed = stdio.call("list_tasks", states=["yours"])
    report = stdio.call("get_task", task_id=task["id"])
    assert (task["title"], task["source"], task["state"]) == ("Write the release notes", "mcp", "yours")
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]
    assert stdio.call("list_tasks", lane="agent") == {"tasks": []}
    assert report["task"]["body"] == "for 0.2" and report["runs"] == []
    assert [item["kind"] for item in report["inbox"]] == ["handoff"]
    assert [event["kind"] for event in report["events"]][:2] == ["task.created", "task.lane"]


def test_a_bad_call_is_a_tool_error_and_the_session_keeps_working(stdio: Session) -> None:
    unknown = stdio.error("get_task", task_id="01JUNKJUNKJUNKJUNKJUNKJUNK")
    empty = stdio.error("add_task", title="   ")
    missing = stdio.error("add_task", body="no title")
    mistyped = stdio.error("list_tasks", states=["finished"])
    no_item = stdio.error("answer", item_id="01JUNKJUNKJUNKJUNKJUNKJUNK", text="yes")
    assert unknown.startswith("Error executing tool get_task: not_found: no task 01JUNK")
    assert "invalid_input: the task title is empty" in empty
    assert missing == "Error executing tool add_task: invalid_input: title: Field required"
    assert mistyped.startswith("Error executing tool list_tasks: invalid_input: states.0: Input should be 'new'")
    assert no_item.startswith("Error executing tool answer: not_found: no inbox item 01JUNK")
    assert stdio.call("add_task", title="still here")["title"] == "still here"


def test_answers_from_mcp_are_signed_as_the_person_channel(in_process: Session, desk: Desk) -> None:
    task = in_process.call("add_task", title="plan the launch", labels=["lane:ask"])
    [item] = in_process.call("inbox", task_id=task["id"])["items"]
    not_an_approval = in_process.error("approve", item_id=item["id"])
    answered = in_process.call("answer", item_id=item["id"], text="launch on Monday")
    again = in_process.error("answer", item_id=item["id"], text="Tuesday")
    assert "invalid_input: " in not_an_approval and "is a question, not an approval" in not_an_approval
    assert (answered["state"], answered["answered_by"]) == ("answered", "mcp")
    assert again.endswith(f"conflict: inbox item {item['id']} is already answered (by mcp)")
    assert in_process.call("inbox") == {"items": []}
    moved = desk.task(task["id"]).task
    assert moved.lane == "agent" and "launch on Monday" in moved.context


def test_steering_a_task_that_is_not_running_needs_keep_and_cancel_ends_it(in_process: Session) -> None:
    task = in_process.call("add_task", title="tidy the docs", labels=["lane:agent"])
    refused = in_process.error("steer", task_id=task["id"], text="use British spelling")
    kept = in_process.call("steer", task_id=task["id"], text="use British spelling", keep=True)
    cancelled = in_process.call("cancel", task_id=task["id"])
    assert "conflict: task" in refused and "is not running" in refused
    assert (kept["run_id"], kept["author"], kept["mode"]) == (None, "mcp", "steer")
    assert cancelled["state"] == "cancelled"
    assert "conflict" in in_process.error("cancel", task_id=task["id"])


def test_get_task_shows_the_last_fifty_events_with_long_values_clipped(in_process: Session, desk: Desk) -> None:
    task = in_process.call("add_task", title="read a big file", labels=["lane:human"])
    before = len(in_process.call("get_task", task_id=task["id"])["events"])
    with desk.engine.begin() as conn:
        for n in range(60):
            append_event(conn, task["id"], "tool.result", {"n": n, "result": ["x" * (CLIP + 10)]})
    report = in_process.call("get_task", task_id=task["id"])
    assert [event["data"]["n"] for event in report["events"]] == list(range(10, 60))
    assert report["earlier_events"] == before + 10
    assert report["events"][-1]["data"]["result"] == ["x" * CLIP + "… (10 more characters)"]


def test_the_http_endpoint_refuses_a_caller_without_the_token(served: ServedApp) -> None:
    refused = httpx.post(f"{served.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert refused.status_code == 401


def test_routed_at_its_exact_path_the_http_app_answers_loopback_hosts_only(desk: Desk) -> None:
    mcp = http_app(desk)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with mcp.router.lifespan_context(mcp):
            yield

    host = Starlette(routes=[Route("/mcp", mcp)], lifespan=lifespan)
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    with TestClient(host, base_url="http://127.0.0.1:8420") as client:
        answered = client.post("/mcp", json=listing, headers=headers, follow_redirects=False)
        rebound = client.post("/mcp", json=listing, headers={**headers, "Host": "evil.example"})
        foreign = client.post("/mcp", json=listing, headers={**headers, "Origin": "http://evil.example"})
    assert answered.status_code == 200, answered.text
    assert {tool["name"] for tool in answered.json()["result"]["tools"]} == TOOLS
    assert (rebound.status_code, foreign.status_code) == (421, 403)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_the_http_endpoint_lists_the_tools_and_files_a_task(served: ServedApp, mode: str) -> None:
    with connected(over_http(f"{served.url}/mcp", served.token, mode)) as session:
        assert set(session.tools()) == TOOLS
        task = session.call("add_task", title="over HTTP", labels=["lane:human"])
        assert session.call("get_task", task_id=task["id"])["task"]["source"] == "mcp"
        assert session.error("cancel", task_id="01JUNKJUNKJUNKJUNKJUNKJUNK").startswith(
            "Error executing tool cancel: not_found"
        )


def asker() -> dict[str, Any]:
    return agent_rule(
        "mcp-ask",
        "[mcp-ask]",
        {**call("ask_human", question="Which name should the file have?"), "content": "I need a name first."},
        call("write_file", path="named.txt", content="named over MCP\n"),
        call("finish", summary="wrote named.txt"),
    )


@pytest.mark.slow
def test_an_agent_files_a_task_answers_its_question_and_reads_the_result_over_http(home: Path) -> None:
    with StubModelServer(script(asker())) as stub:
        write_profiles(home, stub.url)
        with ServedApp() as served, connected(over_http(f"{served.url}/mcp", served.token)) as session:
            task = session.call("add_task", title="[mcp-ask] write a named file", labels=["lane:agent"])
            worker = start_worker(home, "--agents", "1", "--until-settled")
            try:
                items = wait_for(lambda: session.call("inbox", task_id=task["id"])["items"], what="the question")
                waiting = session.call("get_task", task_id=task["id"])["task"]["state"]
                answered = session.call("answer", item_id=items[0]["id"], text="call it named.txt")
                finish_worker(worker, home)
            finally:
                worker.kill()  # a no-op once it has exited; stops it if the test failed first
            report = session.call("get_task", task_id=task["id"])
    assert [(i["kind"], i["prompt"]) for i in items] == [("question", "Which name should the file have?")]
    assert (waiting, answered["answered_by"]) == ("waiting", "mcp")
    assert report["task"]["state"] == "done" and report["task"]["result"] == "wrote named.txt"
    assert [run["summary"] for run in report["runs"]] == ["wrote named.txt"]
    asked = [e["data"] for e in report["events"] if e["kind"] == "tool.result" and e["data"]["tool"] == "ask_human"]
    assert [data["result"] for data in asked] == ["The person answered: call it named.txt"]
    assert (home / "workspaces" / task["id"] / "named.txt").read_text() == "named over MCP\n"
