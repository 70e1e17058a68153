"""a version per collection index, bumped with every change to its searchable chunks

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 11:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("collections", sa.Column("index_version", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("collections", "index_version")
