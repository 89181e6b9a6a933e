"""The event log: every change to a task or run, in order, for transcripts and live views."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from ulid import ULID

from autodo.policy.redaction import scrub_data
from autodo.store import now
from autodo.store.schema import events


class Event(BaseModel):
    seq: int
    task_id: str
    run_id: str | None
    kind: str
    data: dict[str, Any]
    at: str


def append_event(
    conn: sa.Connection,
    task_id: str,
    kind: str,
    data: dict[str, Any],
    *,
    run_id: str | None = None,
    key: str | None = None,
) -> None:
    """Append an event; a repeated ``key`` (code replayed after a crash) is ignored.

    Events are the source of transcripts, live streams and the API, so secrets are scrubbed here.
    """
    data = scrub_data(data)
    key = key or f"{task_id}:{ULID()}"
    exists = conn.execute(sa.select(events.c.seq).where(events.c.key == key)).first()
    if exists is None:
        conn.execute(events.insert().values(key=key, task_id=task_id, run_id=run_id, kind=kind, data=data, at=now()))


def list_events(engine: sa.Engine, task_id: str | None = None, after: int = 0, limit: int = 1000) -> list[Event]:
    query = sa.select(events).where(events.c.seq > after).order_by(events.c.seq).limit(limit)
    if task_id is not None:
        query = query.where(events.c.task_id == task_id)
    with engine.connect() as conn:
        return [Event.model_validate(dict(row._mapping)) for row in conn.execute(query)]


def recent_events(engine: sa.Engine, task_id: str, limit: int = 1000) -> list[Event]:
    """A task's latest ``limit`` events, oldest first (a long transcript keeps its end)."""
    query = sa.select(events).where(events.c.task_id == task_id).order_by(events.c.seq.desc()).limit(limit)
    with engine.connect() as conn:
        rows = list(conn.execute(query))
    return [Event.model_validate(dict(row._mapping)) for row in reversed(rows)]


def last_event_at(conn: sa.Connection, run_id: str, kind: str) -> str | None:
    """When the run's latest event of this kind happened."""
    query = sa.select(sa.func.max(events.c.at)).where(events.c.run_id == run_id, events.c.kind == kind)
    return conn.execute(query).scalar()


def head_seq(engine: sa.Engine) -> int:
    """The number of the latest event (0 when there is none): where a live view starts reading."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.seq), 0))).scalar_one())
