"""Raw journal, events, notices, regions and their order-29 ranges and tiles.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "raw_journal",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("topic", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("receipts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("status", sa.String(16), nullable=False, server_default="received"),
        sa.Column("reason", sa.Text),
        sa.Column("notice_id", sa.BigInteger),
    )
    op.create_table(
        "events",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("messenger", sa.String(8), nullable=False),
        sa.Column("mission", sa.Text, nullable=False),
        sa.Column("instrument", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("trigger_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("active_region_id", sa.BigInteger),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Text, sa.ForeignKey("events.event_id"), nullable=False),
        sa.Column("journal_id", sa.BigInteger, sa.ForeignKey("raw_journal.id"), nullable=False),
        sa.Column("notice_type", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("issue_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("retraction", sa.Boolean, nullable=False),
        sa.Column("ivorn", sa.Text),
        sa.Column("significance", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("extra", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.UniqueConstraint("journal_id", name="uq_notices_journal"),
    )
    op.create_index("ix_notices_event", "notices", ["event_id", "issue_time"])
    op.create_foreign_key("fk_journal_notice", "raw_journal", "notices", ["notice_id"], ["id"],
                          ondelete="SET NULL")
    op.create_table(
        "regions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Text, sa.ForeignKey("events.event_id"), nullable=False),
        sa.Column("notice_id", sa.BigInteger, sa.ForeignKey("notices.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("area_deg2", sa.Float, nullable=False),
        sa.Column("credible_level", sa.Float, nullable=False),
        sa.Column("n_ranges", sa.Integer, nullable=False),
        sa.Column("convention", sa.Text, nullable=False),
        sa.Column("center_ra", sa.Float),
        sa.Column("center_dec", sa.Float),
        sa.Column("radius90_deg", sa.Float),
        sa.Column("sigma_deg", sa.Float),
        sa.Column("distance", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("event_id", "version", name="uq_regions_event_version"),
    )
    op.create_foreign_key("fk_events_region", "events", "regions", ["active_region_id"], ["id"])
    for name in ("region_ranges", "region_tiles"):
        cols = [
            sa.Column("region_id", sa.BigInteger,
                      sa.ForeignKey("regions.id", ondelete="CASCADE"), nullable=False),
            sa.Column("rng", postgresql.INT8RANGE, nullable=False),
        ]
        if name == "region_tiles":
            cols += [sa.Column("credible_level", sa.Float, nullable=False),
                     sa.Column("density_deg2", sa.Float, nullable=False)]
        op.create_table(name, *cols)
        op.create_index(f"ix_{name}_region", name, ["region_id"])
        op.create_index(f"ix_{name}_rng", name, ["rng"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_constraint("fk_events_region", "events", type_="foreignkey")
    op.drop_constraint("fk_journal_notice", "raw_journal", type_="foreignkey")
    for name in ("region_tiles", "region_ranges", "regions", "notices", "events",
                 "raw_journal"):
        op.drop_table(name)
