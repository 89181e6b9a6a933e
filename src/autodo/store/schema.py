"""The tables of the domain store (SQLAlchemy Core); Alembic migrations create them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Timestamps are ISO-8601 UTC strings: they sort, and read the same on SQLite and PostgreSQL.
tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False, server_default=""),
    sa.Column("source", sa.String(40), nullable=False, server_default="cli"),
    sa.Column("priority", sa.Integer, nullable=False, server_default="2"),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("lane", sa.String(10)),
    sa.Column("lane_reason", sa.Text),
    sa.Column("lane_set_by", sa.String(20)),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("profile", sa.String(80), nullable=False, server_default="default"),
    sa.Column("parent_id", sa.String(26), sa.ForeignKey("tasks.id")),
    sa.Column("context", sa.Text, nullable=False, server_default=""),
    sa.Column("result", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Index("ix_tasks_state", "state"),
)

task_blockers = sa.Table(
    "task_blockers",
    metadata,
    sa.Column("task_id", sa.String(26), sa.ForeignKey("tasks.id"), primary_key=True),
    sa.Column("blocker_id", sa.String(26), sa.ForeignKey("tasks.id"), primary_key=True),
)

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(80), primary_key=True),  # also the DBOS workflow id
    sa.Column("task_id", sa.String(26), sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("profile", sa.String(80), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("enqueued", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("worker", sa.String(120)),
    sa.Column("requests", sa.Integer, nullable=False, server_default="0"),
    sa.Column("input_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("output_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("tool_calls", sa.Integer, nullable=False, server_default="0"),
    sa.Column("summary", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("started_at", sa.String(32)),
    sa.Column("ended_at", sa.String(32)),
    sa.UniqueConstraint("task_id", "attempt", name="uq_runs_task_attempt"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False, unique=True),  # makes appends from replayed code idempotent
    sa.Column("task_id", sa.String(26), nullable=False),
    sa.Column("run_id", sa.String(80)),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Index("ix_events_task", "task_id", "seq"),
)

inbox_items = sa.Table(
    "inbox_items",
    metadata,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("task_id", sa.String(26), sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("run_id", sa.String(80)),
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("context", sa.JSON, nullable=False),
    sa.Column("answer", sa.Text),
    sa.Column("answered_by", sa.String(120)),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("answered_at", sa.String(32)),
    sa.Index("ix_inbox_state", "state", "created_at"),
)

tool_executions = sa.Table(
    "tool_executions",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # run id, turn and tool call id
    sa.Column("run_id", sa.String(80), nullable=False),
    sa.Column("tool", sa.String(80), nullable=False),
    sa.Column("arguments", sa.JSON, nullable=False),
    sa.Column("result", sa.Text),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32)),
)
