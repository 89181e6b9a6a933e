"""MCP: the manager's desk as tools for another agent (Claude Code, Codex, any MCP client).

The same nine tools are served two ways:

* ``autodo mcp`` speaks MCP over stdio (`run_stdio`), for a client that starts autodo itself;
* ``/mcp`` in ``autodo serve`` speaks streamable HTTP (`http_app`), behind the API's Bearer token.

Each tool is a thin, typed call to a `Desk` service function, so MCP can do nothing the CLI
cannot. An `AutodoError` (or arguments that fail validation) comes back as a tool error
(``isError``) whose text starts with the error's code and carries its message, so the calling
agent can read what went wrong and try again; no call can crash the session.

Who acts: an MCP caller acts for the person who holds the token (or who started ``autodo mcp``).
It is one of the person's channels, like the CLI, and its answers, approvals and steering
messages are recorded as by ``mcp``. That is why it may approve a tool call, which an actor named
``agent:…`` never may: give the token (or the stdio server) only to an agent you would let
answer and approve in your name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from starlette.applications import Starlette
from starlette.routing import Mount

from autodo import __version__
from autodo.desk import Desk, TaskDetail
from autodo.errors import AutodoError
from autodo.events import Event
from autodo.inbox.model import InboxItem
from autodo.runs.budget import parse_budget
from autodo.runs.model import Run
from autodo.steering.model import Message, Mode
from autodo.tasks.model import Lane, NewTask, State, Task

ACTOR = "mcp"  # how answers, approvals and messages from MCP are signed: a channel of the person
EVENTS_SHOWN = 50
CLIP = 2_000  # characters of one string in an event; tool results can be whole files
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")

INSTRUCTIONS = """\
autodo is a to-do list worked by a team of AI agents. File work with add_task (the label \
lane:agent sends it straight to an agent; without it, triage decides who does it). Follow it \
with get_task: its state, the runs' summaries, its result and the latest transcript. When an \
agent needs the person, a question, approval or budget request waits in the inbox tool; answer, \
approve or deny it (you act for the person who gave you access). steer tells a running agent \
something; cancel stops a task."""

P = ParamSpec("P")
R = TypeVar("R")

Priority = Literal["urgent", "high", "normal", "low"]
TaskId = Annotated[str, Field(description="A task id, as add_task and list_tasks return it.")]
ItemId = Annotated[str, Field(description="An inbox item id, as the inbox and get_task tools return it.")]

READS = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
STOPS = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)


class TaskList(BaseModel):
    """Tasks by priority."""

    tasks: list[Task]


class Inbox(BaseModel):
    """What waits on the person: questions, approvals, hand-offs, reviews and budget requests."""

    items: list[InboxItem]


class TaskReport(BaseModel):
    """A task with what its runs did: enough for a caller to read the result."""

    task: Task = Field(description="The task; `result` holds the outcome once it is done.")
    runs: list[Run] = Field(description="Its runs, oldest first, each with a summary or an error.")
    inbox: list[InboxItem] = Field(description="Its items still waiting on an answer.")
    events: list[Event] = Field(description=f"The last {EVENTS_SHOWN} transcript events; long strings clipped.")
    earlier_events: int = Field(description="How many earlier events are not shown.")


def reports_errors(tool: Callable[P, R]) -> Callable[P, R]:
    """Raise autodo's errors as MCP tool errors the caller reads, code first."""

    @functools.wraps(tool)
    def reporting(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return tool(*args, **kwargs)
        except AutodoError as error:
            raise ToolError(f"{error.code}: {error.message}") from error
        except ValidationError as error:
            raise ToolError(f"invalid_input: {_problems(error)}") from error

    return reporting


def _problems(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in error.errors())


class DeskTools:
    """The MCP tools; the docstrings and field descriptions are what the calling agent reads."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    @reports_errors
    def add_task(
        self,
        title: Annotated[str, Field(description="A short sentence saying what should be done.")],
        body: Annotated[str, Field(description="Details, context and what done looks like.")] = "",
        priority: Priority = "normal",
        labels: Annotated[
            Sequence[str],
            Field(description="Labels; lane:agent|ask|human decides who does it, profile:NAME picks the profile."),
        ] = (),
        blocked_by: Annotated[Sequence[str], Field(description="Ids of tasks that must be done first.")] = (),
        profile: Annotated[str | None, Field(description="The agent profile to work it (default: 'default').")] = None,
        budget: Annotated[
            str | None, Field(description='Its own limits, e.g. "turns=20 usd=1" (default: the profile\'s).')
        ] = None,
    ) -> Task:
        """File a task for the team; returns it with its id."""
        request = NewTask(
            title=title, body=body, priority=priority, labels=list(labels), blocked_by=list(blocked_by),
            profile=profile, budget=parse_budget(budget) if budget else None, source=ACTOR,
        )  # fmt: skip
        return self.desk.add(request)

    @reports_errors
    def list_tasks(
        self,
        states: Annotated[Sequence[State], Field(description="Only tasks in these states (default: all).")] = (),
        lane: Annotated[Lane | None, Field(description="Only tasks in this lane.")] = None,
    ) -> TaskList:
        """List tasks by priority."""
        return TaskList(tasks=self.desk.tasks(list(states) or None, lane))

    @reports_errors
    def get_task(self, task_id: TaskId) -> TaskReport:
        """A task with its runs, open inbox items and latest transcript: its state and result."""
        return task_report(self.desk.task(task_id))

    @reports_errors
    def inbox(self, task_id: Annotated[str | None, Field(description="Only the items of this task.")] = None) -> Inbox:
        """What waits on the person (oldest first): each item's id, kind, prompt and task."""
        items = self.desk.inbox()
        return Inbox(items=[item for item in items if task_id is None or item.task_id == task_id])

    @reports_errors
    def answer(
        self, item_id: ItemId, text: Annotated[str, Field(description="The answer the agent reads.")]
    ) -> InboxItem:
        """Answer a question, hand-off, review or budget request; a waiting run carries on."""
        return self.desk.answer(item_id, text, by=ACTOR)

    @reports_errors
    def approve(
        self,
        item_id: ItemId,
        for_run: Annotated[
            bool, Field(description="Also allow every later call this rule holds in the same run.")
        ] = False,
    ) -> InboxItem:
        """Allow the exact tool call an approval item shows."""
        return self.desk.approve(item_id, for_run=for_run, by=ACTOR)

    @reports_errors
    def deny(self, item_id: ItemId, reason: Annotated[str, Field(description="Why; the agent reads it.")]) -> InboxItem:
        """Refuse the tool call an approval item shows."""
        return self.desk.deny(item_id, reason, by=ACTOR)

    @reports_errors
    def steer(
        self,
        task_id: TaskId,
        text: Annotated[str, Field(description="What the agent should know or do differently.")],
        mode: Annotated[
            Mode,
            Field(description="steer: with its next model request; queue: when it would finish; interrupt: now."),
        ] = Mode.STEER,
        keep: Annotated[
            bool, Field(description="If the task is not running, keep the message for its next run.")
        ] = False,
    ) -> Message:
        """Tell the agent working a task something."""
        return self.desk.say(task_id, text, mode, keep=keep, by=ACTOR)

    @reports_errors
    def cancel(self, task_id: TaskId) -> Task:
        """Cancel a task and stop its run; its workspace stays as it is."""
        return self.desk.cancel(task_id)


def task_report(detail: TaskDetail) -> TaskReport:
    """The task with only its latest events, clipped: a transcript can hold whole files."""
    shown = detail.events[-EVENTS_SHOWN:]
    return TaskReport(
        task=detail.task,
        runs=detail.runs,
        inbox=detail.inbox,
        events=[event.model_copy(update={"data": _clipped(event.data)}) for event in shown],
        earlier_events=len(detail.events) - len(shown),
    )


def _clipped(value: Any) -> Any:
    if isinstance(value, str) and len(value) > CLIP:
        return f"{value[:CLIP]}… ({len(value) - CLIP} more characters)"
    if isinstance(value, dict):
        return {key: _clipped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clipped(item) for item in value]
    return value


class DeskServer(MCPServer):
    """An MCP server whose argument errors read like autodo's own: ``invalid_input: field: problem``."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as error:
            # The SDK's own check of the arguments: its text is pydantic's, with a URL and a model name.
            if isinstance(error.__cause__, ValidationError):
                raise ToolError(
                    f"Error executing tool {name}: invalid_input: {_problems(error.__cause__)}"
                ) from error.__cause__
            raise


def build_mcp_server(desk: Desk) -> MCPServer:
    """An MCP server whose tools work on this desk."""
    # The SDK configures root logging at this level; at INFO it would log every call.
    server = DeskServer("autodo", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")
    tools = DeskTools(desk)
    kinds: list[tuple[ToolAnnotations, list[Callable[..., BaseModel]]]] = [
        (READS, [tools.list_tasks, tools.get_task, tools.inbox]),
        (WRITES, [tools.add_task, tools.answer, tools.approve, tools.deny, tools.steer]),
        (STOPS, [tools.cancel]),
    ]
    for hints, functions in kinds:
        for function in functions:
            server.add_tool(function, annotations=hints)
    return server


def run_stdio(desk: Desk) -> None:
    """Serve MCP over stdin/stdout until the client closes them (the SDK sends stray prints to stderr)."""
    build_mcp_server(desk).run("stdio")


def http_app(desk: Desk, hosts: Sequence[str] | None = LOCAL_HOSTS) -> Starlette:
    """MCP over streamable HTTP for ``autodo serve``, answering at any path it is given.

    What the host app must do:

    * run this app's lifespan inside its own, ``async with mcp.router.lifespan_context(mcp):``.
      It runs the SDK's session manager; Starlette does not run a mounted or routed app's
      lifespan, and without it every request fails. It can be entered only once: one app, one run.
    * route ``/mcp`` to it: ``app.router.routes.append(Route("/mcp", mcp))`` answers that exact
      path; ``app.mount("/mcp", mcp)`` answers ``/mcp`` with a 307 redirect to ``/mcp/`` (the SDK's
      client follows it; a client that does not would fail).
    * authenticate: this app checks no token.

    ``hosts`` are the names the server is reached by (with any port); a request with another
    Host or Origin header is refused, so a web page cannot reach it through DNS rebinding. Add the
    server's names when it listens beyond loopback, or pass None to leave the check to the host.
    """
    server = build_mcp_server(desk)
    # Stateless with JSON responses: each POST stands alone, so a restart loses no session, no
    # stream stays open through the host's middleware, and no tool needs a back channel.
    server.streamable_http_app(stateless_http=True, json_response=True, transport_security=_security(hosts))
    manager = server.session_manager  # made by the call above; its Starlette app routes one fixed path
    return Starlette(routes=[Mount("", app=manager.handle_request)], lifespan=lambda _: manager.run())


def _security(hosts: Sequence[str] | None) -> TransportSecuritySettings:
    if hosts is None:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[name for host in hosts for name in (host, f"{host}:*")],
        allowed_origins=[
            f"{scheme}://{name}" for host in hosts for scheme in ("http", "https") for name in (host, f"{host}:*")
        ],
    )
