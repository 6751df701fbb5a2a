"""Regions: the radial law of circles.

``regions.radial_model`` (JSONB) is the law that gives a circle's credible levels and
densities (``skymaps.radial``: the Fisher law, the Fermi GBM core + tail mixture, the
King profile fitted to IceCube's 50 % and 90 % radii). Empty for other kinds, and for
circles stored before this revision: their law is the Fisher law of ``sigma_deg``, as
it was when they were stored.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("regions", sa.Column("radial_model", JSONB, nullable=False,
                                       server_default=sa.text("'{}'::jsonb")))


def downgrade() -> None:
    op.drop_column("regions", "radial_model")
