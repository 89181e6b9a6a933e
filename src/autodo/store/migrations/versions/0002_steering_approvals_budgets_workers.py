"""Steering messages, approvals, budgets with cost, and the worker leases.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("budget", sa.JSON(), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("cost_usd", sa.Float(), nullable=True))
        batch.add_column(sa.Column("waited_seconds", sa.Float(), server_default="0", nullable=False))
    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("task_id", sa.String(length=26), nullable=False),
        sa.Column("run_id", sa.String(length=80), nullable=True),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=120), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("delivered_at", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_messages_task_state", "messages", ["task_id", "state"])
    op.create_table(
        "approvals",
        sa.Column("item_id", sa.String(length=26), nullable=False),
        sa.Column("run_id", sa.String(length=80), nullable=False),
        sa.Column("call_key", sa.String(length=200), nullable=False),
        sa.Column("tool", sa.String(length=80), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("arguments_hash", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("decision", sa.String(length=12), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=120), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["inbox_items.id"]),
        sa.PrimaryKeyConstraint("item_id"),
        sa.UniqueConstraint("call_key"),
    )
    op.create_index("ix_approvals_run", "approvals", ["run_id", "tool"])
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=120), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("lease_seconds", sa.Float(), nullable=False),
        sa.Column("heartbeat", sa.Float(), nullable=False),
        sa.Column("started_at", sa.String(length=32), nullable=False),
        sa.Column("taken_over_by", sa.String(length=120), nullable=True),
        sa.Column("taken_over_at", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_index("ix_approvals_run", table_name="approvals")
    op.drop_table("approvals")
    op.drop_index("ix_messages_task_state", table_name="messages")
    op.drop_table("messages")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("waited_seconds")
        batch.drop_column("cost_usd")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("budget")
