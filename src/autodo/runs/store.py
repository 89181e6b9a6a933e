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
    """Start the next attempt of a queued task; None when another worker got there first."""
    claimed = conn.execute(
        tasks.update()
        .where(tasks.c.id == task_id, tasks.c.state == "queued")
        .values(attempts=tasks.c.attempts + 1, updated_at=now())
        .returning(tasks.c.attempts)
    ).scalar()
    if claimed is None:
        return None
    if active_run(conn, task_id) is not None:
        return None
    run_id = run_id_for(task_id, claimed)
    conn.execute(
        runs.insert().values(
            id=run_id, task_id=task_id, attempt=claimed, profile=profile, state=RunState.QUEUED.value, created_at=now()
        )
    )
    append_event(conn, task_id, "run.queued", {"attempt": claimed, "profile": profile}, run_id=run_id)
    return get_run(conn, run_id)


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
