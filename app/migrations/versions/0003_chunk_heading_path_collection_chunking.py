"""chunk heading path, per-collection chunk size and overlap

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 08:55:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chunks", schema=None) as batch_op:
        # server_default fills the rows of existing databases; ORM inserts always set it.
        batch_op.add_column(sa.Column("heading_path", sa.Text(), nullable=False, server_default=""))

    with op.batch_alter_table("collections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chunk_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("chunk_overlap_tokens", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35), not batch mode: a batch rebuild drops and recreates
    # the table, and with foreign keys on, dropping collections would cascade-delete every
    # document and chunk.
    op.drop_column("collections", "chunk_overlap_tokens")
    op.drop_column("collections", "chunk_tokens")
    op.drop_column("chunks", "heading_path")
