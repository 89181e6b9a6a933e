"""What the board and the team views show: one card per task, and what each profile is doing."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import sqlalchemy as sa
from pydantic import BaseModel

from autodo.agents.profiles import ProfileFile
from autodo.runs.model import LIVE_RUN_STATES, Run
from autodo.store import seconds_since
from autodo.store.schema import events, runs
from autodo.tasks import board
from autodo.tasks.model import COLUMNS, State, Task

INBOX_VERBS = {
    "question": "asks you",
    "handoff": "handed to you",
    "approval": "waits for your approval",
    "review": "ready for your review",
    "budget": "at its budget",
}
ACTIVITY_KINDS = ("agent.turn", "tool.result", "task.lane", "run.finished", "triage.failed", "inbox.opened")


class Card(BaseModel):
    """A task on the board with its agent, time, usage and latest activity."""

    task: Task
    column: str
    agent: str | None
    started_at: str | None
    elapsed_seconds: float | None
    tokens: int
    cost_usd: float | None
    activity: str | None


class AgentNow(BaseModel):
    task_id: str
    title: str
    state: str
    started_at: str | None
    activity: str | None


class ProfileLoad(BaseModel):
    """One profile of the team: its set-up, what its agents do now, and what it used today."""

    name: str
    model: str | None
    concurrency: int
    running: list[AgentNow]
    queued: int
    tokens_today: int
    cost_today_usd: float | None


class Team(BaseModel):
    profiles: list[ProfileLoad]


def describe_event(kind: str, data: dict[str, object]) -> str | None:
    """A one-line description of an event for live views, or None for events they do not show."""
    text = _event_text(kind, data)
    return " ".join(text.split())[:160] if text else None


def _event_text(kind: str, data: dict[str, object]) -> str | None:
    if kind == "agent.turn":
        calls = data.get("tool_calls") or []
        if isinstance(calls, list) and calls:
            return "→ " + ", ".join(str(call.get("tool")) for call in calls if isinstance(call, dict))
        return str(data.get("text") or "") or None
    if kind == "tool.result":
        return f"{data.get('tool')}: {data.get('result')}"
    if kind == "inbox.opened":
        return f"{INBOX_VERBS.get(str(data.get('kind')), 'waits on you')}: {data.get('prompt')}"
    if kind in ("task.lane", "run.finished", "triage.failed"):
        return str(data.get("reason") or data.get("text") or data.get("error") or data.get("summary") or "") or None
    return None


def column_of(state: State) -> str:
    return next(name for name, states in COLUMNS.items() if state in states)


def cards(conn: sa.Connection) -> list[Card]:
    """Every task as a board card, in board order (priority, then age)."""
    runs_by_task = _runs_by_task(conn)
    activity = latest_activity(conn)
    return [_card(task, runs_by_task.get(task.id, []), activity.get(task.id)) for task in board.list_tasks(conn)]


def card(conn: sa.Connection, task_id: str) -> Card:
    """One task's card (the task page's header)."""
    task = board.get_task(conn, task_id)
    task_runs = [
        Run.from_row(row)
        for row in conn.execute(sa.select(runs).where(runs.c.task_id == task_id).order_by(runs.c.attempt))
    ]
    return _card(task, task_runs, latest_activity(conn, task_id).get(task_id))


def _card(task: Task, task_runs: list[Run], activity: str | None) -> Card:
    latest = task_runs[-1] if task_runs else None
    return Card(
        task=task,
        column=column_of(task.state),
        agent=latest.profile if latest else None,
        started_at=latest.started_at if latest else None,
        elapsed_seconds=_elapsed(latest) if latest else None,
        tokens=sum(run.total_tokens for run in task_runs),
        cost_usd=_total_cost(task_runs),
        activity=activity,
    )


def _elapsed(run: Run) -> float | None:
    if run.started_at is None:
        return None
    until = seconds_since(run.ended_at) if run.ended_at else 0.0
    return max(0.0, seconds_since(run.started_at) - until - run.waited_seconds)  # time on the person is not work


def _total_cost(task_runs: list[Run]) -> float | None:
    """Known costs add up; one run with tokens and an unknown price makes the total unknown."""
    if any(run.cost_usd is None and run.total_tokens for run in task_runs):
        return None
    return sum(run.cost_usd or 0.0 for run in task_runs)


def _runs_by_task(conn: sa.Connection) -> dict[str, list[Run]]:
    grouped: dict[str, list[Run]] = defaultdict(list)
    for row in conn.execute(sa.select(runs).order_by(runs.c.task_id, runs.c.attempt)):
        grouped[row.task_id].append(Run.from_row(row))
    return grouped


def latest_activity(conn: sa.Connection, task_id: str | None = None) -> dict[str, str]:
    """The latest describable event of each task (or of one)."""
    query = sa.select(sa.func.max(events.c.seq).label("seq")).where(events.c.kind.in_(ACTIVITY_KINDS))
    if task_id is not None:
        query = query.where(events.c.task_id == task_id)
    latest = query.group_by(events.c.task_id).subquery()
    rows = conn.execute(
        sa.select(events.c.task_id, events.c.kind, events.c.data).join(latest, events.c.seq == latest.c.seq)
    )
    described = {row.task_id: describe_event(row.kind, row.data) for row in rows}
    return {task_id: line for task_id, line in described.items() if line}


def team(conn: sa.Connection, profiles: ProfileFile) -> Team:
    """Each profile with its live runs, its queue and today's usage (UTC day)."""
    all_cards = cards(conn)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    names = list(profiles.profile) + sorted(
        {card.agent or card.task.profile for card in all_cards} - set(profiles.profile)
    )
    loads = []
    for name in names:
        profile = profiles.profile.get(name)
        mine = [card for card in all_cards if (card.agent or card.task.profile) == name]
        loads.append(
            ProfileLoad(
                name=name,
                model=profile.model if profile else None,
                concurrency=profile.concurrency if profile else 0,
                running=[_agent_now(card) for card in mine if _has_live_run(card)],
                queued=sum(card.task.state is State.QUEUED for card in mine),
                **_usage_today(conn, name, today),
            )
        )
    return Team(profiles=loads)


def _has_live_run(card: Card) -> bool:
    """A task with a run that is working or waiting (an ask-lane task waits with no run yet)."""
    return card.agent is not None and card.task.state.value in LIVE_RUN_STATES


def _agent_now(card: Card) -> AgentNow:
    return AgentNow(
        task_id=card.task.id,
        title=card.task.title,
        state=card.task.state.value,
        started_at=card.started_at,
        activity=card.activity,
    )


def _usage_today(conn: sa.Connection, profile: str, today: str) -> dict[str, object]:
    rows = conn.execute(
        sa.select(runs.c.input_tokens, runs.c.output_tokens, runs.c.cost_usd).where(
            runs.c.profile == profile, runs.c.started_at >= today
        )
    ).all()
    unknown = any(row.cost_usd is None and (row.input_tokens or row.output_tokens) for row in rows)
    return {
        "tokens_today": sum(row.input_tokens + row.output_tokens for row in rows),
        "cost_today_usd": None if unknown else sum(row.cost_usd or 0.0 for row in rows),
    }
