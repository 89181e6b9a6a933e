"""Symphony's observability API (section 13.7 of its spec), so its dashboards read autodo.

``GET /api/v1/state`` summarises the runs, ``GET /api/v1/<identifier>`` details one task (by
task id), ``POST /api/v1/refresh`` asks for an immediate poll; other methods get 405. A task is
Symphony's "issue"; its run is the "session"; a task queued again after a failed run is
"retrying". Errors carry Symphony's envelope (``{"error": {"code", "message"}}``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request, status
from pydantic import BaseModel

from autodo.errors import AutodoError, NotFound
from autodo.events import Event
from autodo.overview import describe_event
from autodo.runs.model import LIVE_RUN_STATES, Run
from autodo.runs.store import runs_of
from autodo.server.api import Id, desk_of
from autodo.store import seconds_since
from autodo.store.schema import events, runs
from autodo.tasks.model import State, Task

router = APIRouter(prefix="/api/v1", tags=["symphony"])
RECENT_EVENTS = 20


class MethodNotAllowed(AutodoError):
    code = "method_not_allowed"
    status = 405


class IssueNotFound(NotFound):
    code = "issue_not_found"


class Tokens(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class RunningRow(BaseModel):
    issue_id: str
    issue_identifier: str
    issue_url: str | None
    title: str
    state: str
    session_id: str
    turn_count: int
    last_event: str | None
    last_message: str | None
    started_at: str | None
    last_event_at: str | None
    tokens: Tokens


class RetryRow(BaseModel):
    issue_id: str
    issue_identifier: str
    issue_url: str | None
    attempt: int
    due_at: str | None
    error: str | None


class Totals(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    seconds_running: float


class StateView(BaseModel):
    generated_at: str
    counts: dict[str, int]
    running: list[RunningRow]
    retrying: list[RetryRow]
    codex_totals: Totals
    rate_limits: dict[str, Any] | None


class RecentEvent(BaseModel):
    at: str
    event: str
    message: str | None


class IssueView(BaseModel):
    issue_identifier: str
    issue_id: str
    status: str
    workspace: dict[str, str]
    attempts: dict[str, int]
    running: RunningRow | None
    retry: RetryRow | None
    logs: dict[str, list[dict[str, str | None]]]
    recent_events: list[RecentEvent]
    last_error: str | None
    tracked: dict[str, Any]


class RefreshAccepted(BaseModel):
    queued: bool
    coalesced: bool
    requested_at: str
    operations: list[str]


@router.get("/state")
def state(request: Request) -> StateView:
    """Running sessions, the retry queue and aggregate tokens and running time."""
    desk = desk_of(request)
    tasks = desk.tasks()
    with desk.engine.connect() as conn:
        running = [_running_row(conn, task) for task in tasks if task.state.value in LIVE_RUN_STATES]
        retrying = [_retry_row(conn, task) for task in tasks if _is_retrying(task)]
        totals = _totals(conn)
    return StateView(
        generated_at=_now(),
        counts={"running": len(running), "retrying": len(retrying)},
        running=[row for row in running if row is not None],
        retrying=[row for row in retrying if row is not None],
        codex_totals=totals,
        rate_limits=None,
    )


@router.post("/refresh", status_code=status.HTTP_202_ACCEPTED)
def refresh(request: Request) -> RefreshAccepted:
    """Ask for an immediate poll. Workers dispatch continuously, so without a tracker this coalesces."""
    hooks: list[Callable[[], str]] = getattr(request.app.state, "refresh_hooks", [])
    operations = [hook() for hook in hooks]
    return RefreshAccepted(
        queued=True, coalesced=not operations, requested_at=_now(), operations=operations or ["dispatch"]
    )


@router.api_route("/state", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
@router.api_route("/refresh", methods=["GET", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def wrong_method(request: Request) -> None:
    raise MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")


@router.get("/{identifier}", responses={404: {"description": "No task with this identifier"}})
def issue(request: Request, identifier: Id) -> IssueView:
    """One task's runtime and debugging details, in Symphony's issue shape."""
    desk = desk_of(request)
    try:
        detail = desk.task(identifier)
    except NotFound:
        raise IssueNotFound(f"no task or issue {identifier!r}; GET /api/v1/state lists the running ones") from None
    task, task_runs = detail.task, detail.runs
    latest = task_runs[-1] if task_runs else None
    with desk.engine.connect() as conn:
        running = _running_row(conn, task) if task.state.value in LIVE_RUN_STATES else None
        retry = _retry_row(conn, task) if _is_retrying(task) else None
    return IssueView(
        issue_identifier=task.id,
        issue_id=task.id,
        status=task.state.value,
        workspace={"path": str(desk.settings.workspaces_dir / task.id)},
        attempts={"restart_count": max(0, task.attempts - 1), "current_retry_attempt": task.attempts},
        running=running,
        retry=retry,
        logs={"codex_session_logs": []},
        recent_events=[_recent(event) for event in detail.events[-RECENT_EVENTS:]],
        last_error=latest.error if latest else None,
        tracked={"title": task.title, "lane": task.lane, "profile": task.profile, "source": task.source},
    )


@router.api_route("/{identifier}", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def issue_wrong_method(request: Request, identifier: str) -> None:
    raise MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")


def _running_row(conn: sa.Connection, task: Task) -> RunningRow | None:
    task_runs = runs_of(conn, task.id)
    if not task_runs:
        return None
    run = task_runs[-1]
    last = _last_event(conn, run.id)
    return RunningRow(
        issue_id=task.id,
        issue_identifier=task.id,
        issue_url=None,
        title=task.title,
        state=task.state.value,
        session_id=run.id,
        turn_count=run.requests,
        last_event=last.kind if last else None,
        last_message=describe_event(last.kind, last.data) if last else None,
        started_at=run.started_at,
        last_event_at=last.at if last else None,
        tokens=_tokens(run),
    )


def _is_retrying(task: Task) -> bool:
    return task.state is State.QUEUED and task.attempts > 0


def _retry_row(conn: sa.Connection, task: Task) -> RetryRow | None:
    task_runs = runs_of(conn, task.id)
    previous = task_runs[-1] if task_runs else None
    return RetryRow(
        issue_id=task.id,
        issue_identifier=task.id,
        issue_url=None,
        attempt=task.attempts + 1,
        due_at=None,  # queued now: it starts when a slot is free
        error=previous.error if previous else None,
    )


def _last_event(conn: sa.Connection, run_id: str) -> Event | None:
    row = conn.execute(
        sa.select(events).where(events.c.run_id == run_id).order_by(events.c.seq.desc()).limit(1)
    ).first()
    return Event.model_validate(dict(row._mapping)) if row else None


def _tokens(run: Run) -> Tokens:
    return Tokens(input_tokens=run.input_tokens, output_tokens=run.output_tokens, total_tokens=run.total_tokens)


def _totals(conn: sa.Connection) -> Totals:
    all_runs = [Run.from_row(row) for row in conn.execute(sa.select(runs))]
    seconds = sum(_working_seconds(run) for run in all_runs)
    return Totals(
        input_tokens=sum(run.input_tokens for run in all_runs),
        output_tokens=sum(run.output_tokens for run in all_runs),
        total_tokens=sum(run.total_tokens for run in all_runs),
        seconds_running=round(seconds, 1),
    )


def _working_seconds(run: Run) -> float:
    """Wall time from start to end (or now), less the time it waited on the person."""
    if run.started_at is None:
        return 0.0
    elapsed = seconds_since(run.started_at) - (seconds_since(run.ended_at) if run.ended_at else 0.0)
    return max(0.0, elapsed - run.waited_seconds)


def _recent(event: Event) -> RecentEvent:
    return RecentEvent(at=event.at, event=event.kind, message=describe_event(event.kind, event.data))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
