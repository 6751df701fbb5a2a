"""Associations emitted by the streaming service: the record of what was published.

One row per (event, region version, alert, status); the unique key makes a replayed
micro-batch or a restart publish nothing twice.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "associations",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("region_version", sa.Integer, nullable=False),
        sa.Column("alert_id", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("record", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("event_id", "region_version", "alert_id", "status",
                            name="uq_associations_key"),
    )
    op.create_index("ix_associations_event", "associations", ["event_id", "region_version"])


def downgrade() -> None:
    op.drop_table("associations")
