"""Associations: when the counterpart was confirmed delivered.

A row is inserted (and committed) before its record is published and marked
``published_at`` once Kafka confirmed delivery. A row left unmarked by a crash is
re-published at the next start only if its key is not already on the topic, so a
crash between delivery and commit neither loses nor doubles a counterpart.
Rows from before this revision were committed after delivery: they are marked.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("associations",
                  sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE associations SET published_at = created_at")
    op.create_index("ix_associations_unpublished", "associations", ["id"],
                    postgresql_where=sa.text("published_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_associations_unpublished", "associations")
    op.drop_column("associations", "published_at")
