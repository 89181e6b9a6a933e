"""Reading and writing runs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from autodo.errors import NotFound
from autodo.events import append_event
from autodo.runs.model import ACTIVE_RUN_STATES, Run, RunState, run_id_for
from autodo.store import now
from autodo.store.schema import runs, tasks


def create_run(conn: sa.Connection, task_id: str, profile: str) -> Run | None:
    """Start the next attempt of a queued task; None when another worker got there first.

    The claim is a compare-and-set on the attempt count the caller saw: of two workers that
    both found the task without a run, only the first update matches; the second matches no row
    (PostgreSQL re-reads the row after the first commits; SQLite runs the writes one by one).
    """
    seen = conn.execute(sa.select(tasks.c.attempts).where(tasks.c.id == task_id, tasks.c.state == "queued")).scalar()
    if seen is None or active_run(conn, task_id) is not None:
        return None
    claimed = conn.execute(
        tasks.update()
        .where(tasks.c.id == task_id, tasks.c.state == "queued", tasks.c.attempts == seen)
        .values(attempts=seen + 1, updated_at=now())
        .returning(tasks.c.attempts)
    ).scalar()
    if claimed is None:
        return None
    run_id = run_id_for(task_id, claimed)
    conn.execute(
        runs.insert().values(
            id=run_id, task_id=task_id, attempt=claimed, profile=profile, state=RunState.QUEUED.value, created_at=now()
        )
    )
    append_event(conn, task_id, "run.queued", {"attempt": claimed, "profile": profile}, run_id=run_id)
    return get_run(conn, run_id)


def tasks_to_start(conn: sa.Connection) -> list[tuple[str, str]]:
    """Queued tasks with no run yet, as (task id, profile), by priority then age."""
    has_run = sa.exists().where(runs.c.task_id == tasks.c.id, runs.c.state.in_(ACTIVE_RUN_STATES))
    query = (
        sa.select(tasks.c.id, tasks.c.profile)
        .where(tasks.c.state == "queued", ~has_run)
        .order_by(tasks.c.priority, tasks.c.id)
    )
    return [(task_id, profile) for task_id, profile in conn.execute(query)]


def get_run(conn: sa.Connection, run_id: str) -> Run:
    row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        raise NotFound(f"no run {run_id}")
    return Run.from_row(row)


def active_run(conn: sa.Connection, task_id: str) -> Run | None:
    query = sa.select(runs).where(runs.c.task_id == task_id, runs.c.state.in_(ACTIVE_RUN_STATES))
    row = conn.execute(query).first()
    return None if row is None else Run.from_row(row)


def runs_of(conn: sa.Connection, task_id: str) -> list[Run]:
    query = sa.select(runs).where(runs.c.task_id == task_id).order_by(runs.c.attempt)
    return [Run.from_row(row) for row in conn.execute(query)]


def unenqueued_runs(conn: sa.Connection) -> list[Run]:
    query = sa.select(runs).where(runs.c.state == RunState.QUEUED.value, runs.c.enqueued == sa.false())
    return [Run.from_row(row) for row in conn.execute(query.order_by(runs.c.created_at))]


def update_run(conn: sa.Connection, run_id: str, **values: Any) -> None:
    conn.execute(runs.update().where(runs.c.id == run_id).values(**values))


def set_live_state(conn: sa.Connection, run_id: str, state: RunState, **values: Any) -> bool:
    """Move a live run to running or waiting, and its task with it; a paused or ended run stays put.

    A step that finishes just after the person paused or cancelled must not undo that.
    """
    live = (RunState.QUEUED.value, RunState.RUNNING.value, RunState.WAITING.value)
    moved = conn.execute(
        runs.update().where(runs.c.id == run_id, runs.c.state.in_(live)).values(state=state.value, **values)
    )
    if moved.rowcount != 1:
        return False
    task_state = "running" if state is RunState.RUNNING else "waiting"
    task_id = conn.execute(sa.select(runs.c.task_id).where(runs.c.id == run_id)).scalar_one()
    conn.execute(tasks.update().where(tasks.c.id == task_id).values(state=task_state, updated_at=now()))
    return True


def pause_run(conn: sa.Connection, run_id: str, expected: RunState) -> bool:
    """Mark the run paused if it is still in the state the person saw."""
    moved = conn.execute(
        runs.update().where(runs.c.id == run_id, runs.c.state == expected.value).values(state=RunState.PAUSED.value)
    )
    return moved.rowcount == 1


def end_run(conn: sa.Connection, run_id: str, state: RunState, *, summary: str | None, error: str | None) -> None:
    conn.execute(
        runs.update()
        .where(runs.c.id == run_id, runs.c.state.in_(ACTIVE_RUN_STATES))
        .values(state=state.value, summary=summary, error=error, ended_at=now())
    )


def usage_totals(conn: sa.Connection) -> dict[str, int]:
    """Tokens and requests over every run."""
    row = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(runs.c.input_tokens), 0),
            sa.func.coalesce(sa.func.sum(runs.c.output_tokens), 0),
            sa.func.coalesce(sa.func.sum(runs.c.requests), 0),
        )
    ).one()
    return {"input_tokens": int(row[0]), "output_tokens": int(row[1]), "requests": int(row[2])}
