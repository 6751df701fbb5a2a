"""Region tiles are read per region (by region_id), never searched by range: drop
their GiST index, which made storing a sky map's tiles 5x slower.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_region_tiles_rng", table_name="region_tiles")


def downgrade() -> None:
    op.create_index("ix_region_tiles_rng", "region_tiles", ["rng"], postgresql_using="gist")
