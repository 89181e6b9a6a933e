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
    sa.Column("budget", sa.JSON),  # the task's own limits; unset ones fall back to its profile's
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
    sa.Column("cost_usd", sa.Float),  # NULL while any turn's price is unknown
    sa.Column("waited_seconds", sa.Float, nullable=False, server_default="0"),  # on the person, not working
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

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("task_id", sa.String(26), sa.ForeignKey("tasks.id"), nullable=False),
    sa.Column("run_id", sa.String(80)),  # NULL: kept for the task's next run
    sa.Column("mode", sa.String(10), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("author", sa.String(120), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("delivered_at", sa.String(32)),
    sa.Index("ix_messages_task_state", "task_id", "state"),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("item_id", sa.String(26), sa.ForeignKey("inbox_items.id"), primary_key=True),
    sa.Column("run_id", sa.String(80), nullable=False),
    sa.Column("call_key", sa.String(200), nullable=False, unique=True),
    sa.Column("tool", sa.String(80), nullable=False),
    sa.Column("arguments", sa.JSON, nullable=False),
    sa.Column("arguments_hash", sa.String(64), nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("decision", sa.String(12), nullable=False),
    sa.Column("scope", sa.String(8)),  # "call" or "run" once approved
    sa.Column("reason", sa.Text),
    sa.Column("decided_by", sa.String(120)),
    sa.Column("expires_at", sa.Float, nullable=False),  # epoch seconds
    sa.Column("used_at", sa.String(32)),
    sa.Index("ix_approvals_run", "run_id", "tool"),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(120), primary_key=True),  # also the DBOS executor id
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("lease_seconds", sa.Float, nullable=False),
    sa.Column("heartbeat", sa.Float, nullable=False),  # epoch seconds of the worker's clock
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("taken_over_by", sa.String(120)),
    sa.Column("taken_over_at", sa.String(32)),
)

webhook_cursors = sa.Table(
    "webhook_cursors",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # sha256 of the url: a changed url is a new webhook
    sa.Column("last_seq", sa.Integer, nullable=False),  # the last event delivered or given up on
    sa.Column("updated_at", sa.String(32), nullable=False),
)

radar_sources = sa.Table(
    "radar_sources",
    metadata,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("cursor", sa.JSON),  # where the next pull starts (the fetcher's own bookmark)
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("pulled_at", sa.String(32)),
)

radar_state = sa.Table(
    "radar_state",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),  # "origin": the corpus centre clusters are measured from
    sa.Column("value", sa.LargeBinary, nullable=False),
)

radar_items = sa.Table(
    "radar_items",
    metadata,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("source_id", sa.String(200), nullable=False),
    sa.Column("url", sa.Text),
    sa.Column("author", sa.String(64)),  # hashed
    sa.Column("at", sa.String(32)),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("rating", sa.Float),
    sa.Column("engagement", sa.Integer, nullable=False),
    sa.Column("thread", sa.String(200)),
    sa.Column("embedding", sa.LargeBinary, nullable=False),  # float32, unit length
    sa.Column("cluster_id", sa.String(26)),
    sa.Column("duplicate_of", sa.String(26)),  # the item it repeats (still counted for its author)
    sa.Column("imported_at", sa.String(32), nullable=False),
    sa.UniqueConstraint("source", "source_id", name="uq_radar_items_source_id"),
    sa.Index("ix_radar_items_cluster", "cluster_id"),
)

radar_clusters = sa.Table(
    "radar_clusters",
    metadata,
    sa.Column("id", sa.String(26), primary_key=True),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("centroid", sa.LargeBinary, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("reporters", sa.Integer, nullable=False),  # unique authors
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),  # the score's parts, quotes, trend, first/last seen
    sa.Column("task_id", sa.String(26)),
    sa.Column("reporters_at_done", sa.Integer),  # growth past this reopens a done task
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),  # numbered under the chain lock
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(120), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("task_id", sa.String(26)),
    sa.Column("run_id", sa.String(80)),
    sa.Column("agent", sa.String(80)),  # the profile
    sa.Column("tool", sa.String(80)),
    sa.Column("decision", sa.String(12)),
    sa.Column("target", sa.Text),
    sa.Column("details", sa.JSON, nullable=False),  # argument hashes and clipped summaries, never secret values
    sa.Column("key", sa.String(255)),  # makes records from replayed code idempotent
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("key", name="uq_audit_log_key"),
    sa.Index("ix_audit_log_task", "task_id", "seq"),
)
