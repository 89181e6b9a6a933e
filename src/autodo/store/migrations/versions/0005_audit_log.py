"""The tamper-evident audit log: one hash chain of decisions and actions.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("task_id", sa.String(length=26), nullable=True),
        sa.Column("run_id", sa.String(length=80), nullable=True),
        sa.Column("agent", sa.String(length=80), nullable=True),
        sa.Column("tool", sa.String(length=80), nullable=True),
        sa.Column("decision", sa.String(length=12), nullable=True),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("key", name="uq_audit_log_key"),
    )
    op.create_index("ix_audit_log_task", "audit_log", ["task_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_task", table_name="audit_log")
    op.drop_table("audit_log")
