"""Outbox of notice × notice coincidences.

* ``coincidences``: one row per coincidence record published on ``mm.coincidences``
  (``mm.test.coincidences`` for test events), keyed ``(event_id, region_version,
  external_event_id, external_region_version, status)``: inserted and committed before
  it is published, marked ``published_at`` once Kafka confirmed delivery, so a replay
  or a restart publishes nothing twice.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coincidences",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("region_version", sa.Integer, nullable=False),
        sa.Column("external_event_id", sa.Text, nullable=False),
        sa.Column("external_region_version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("record", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("event_id", "region_version", "external_event_id",
                            "external_region_version", "status", name="uq_coincidences_key"),
    )
    op.create_index("ix_coincidences_events", "coincidences", ["event_id", "external_event_id"])


def downgrade() -> None:
    op.drop_index("ix_coincidences_events", "coincidences")
    op.drop_table("coincidences")
