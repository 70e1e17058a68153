"""directory (LDAP) users and the directory groups that give collection roles

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-16 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _member_role() -> sa.types.TypeEngine:
    # memberships (0001) created PostgreSQL's native member_role type already: reuse it.
    return sa.Enum("admin", "editor", "reader", name="member_role").with_variant(
        postgresql.ENUM("admin", "editor", "reader", name="member_role", create_type=False), "postgresql"
    )


def upgrade() -> None:
    op.add_column("users", sa.Column("from_directory", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "directory_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("group_name", sa.String(length=512), nullable=False),
        sa.Column("role", _member_role(), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("collection_id", "group_name"),
    )


def downgrade() -> None:
    op.drop_table("directory_groups")
    # Plain DROP COLUMN, not a batch rebuild (see 0003): rebuilding users would cascade.
    op.drop_column("users", "from_directory")
