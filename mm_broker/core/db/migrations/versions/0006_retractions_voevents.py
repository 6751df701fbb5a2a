"""Outbox of retractions, and the VOEvents we issued.

* ``retractions``: one row per retracted event (the retraction record published on
  ``mm.retractions``), inserted and committed before it is published and marked
  ``published_at`` once Kafka confirmed delivery; a replay or a restart finds the row
  and publishes nothing twice.
* ``voevents``: every VOEvent we broadcast (IVORN, event, region version, kind and
  the document), so that the numbering of our VOEvents, the VOEvents a retraction
  cites and the portal's list survive restarts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retractions",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("notice_version", sa.BigInteger, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("record", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "voevents",
        sa.Column("ivorn", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("region_version", sa.Integer, nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("authored", sa.DateTime(timezone=True), nullable=False),
        sa.Column("xml", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_voevents_event", "voevents", ["event_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_voevents_event", "voevents")
    op.drop_table("voevents")
    op.drop_table("retractions")
