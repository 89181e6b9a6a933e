"""The feedback radar: sources, items with their embeddings, clusters, the corpus centre.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "radar_sources",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("pulled_at", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "radar_state",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "radar_items",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.String(length=200), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("author", sa.String(length=64), nullable=True),
        sa.Column("at", sa.String(length=32), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("rating", sa.Float(), nullable=True),
        sa.Column("engagement", sa.Integer(), nullable=False),
        sa.Column("thread", sa.String(length=200), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("cluster_id", sa.String(length=26), nullable=True),
        sa.Column("duplicate_of", sa.String(length=26), nullable=True),
        sa.Column("imported_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "source_id", name="uq_radar_items_source_id"),
    )
    op.create_index("ix_radar_items_cluster", "radar_items", ["cluster_id"])
    op.create_table(
        "radar_clusters",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("centroid", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("reporters", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("task_id", sa.String(length=26), nullable=True),
        sa.Column("reporters_at_done", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("radar_clusters")
    op.drop_index("ix_radar_items_cluster", table_name="radar_items")
    op.drop_table("radar_items")
    op.drop_table("radar_state")
    op.drop_table("radar_sources")
