"""per-collection text embedder

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-14 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL means "the settings default" (MMKB_TEXT_EMBEDDER), so existing collections keep
    # the embedder their indexes were built with.
    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text_embedder", sa.String(length=100), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN, not a batch rebuild (see 0003).
    op.drop_column("collections", "text_embedder")
