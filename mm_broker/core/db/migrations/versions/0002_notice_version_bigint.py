"""Notice versions are 64-bit (LVK versions derive from Unix times in tenths of s).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("notices", "version", type_=sa.BigInteger, existing_nullable=False)


def downgrade() -> None:
    op.alter_column("notices", "version", type_=sa.Integer, existing_nullable=False)
