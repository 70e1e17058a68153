"""ingest job owner, "interrupted" job status

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OLD_STATUSES = ("queued", "running", "done", "failed")
NEW_STATUSES = (*OLD_STATUSES, "interrupted")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # A native enum type: the value is added to it (allowed in a transaction since
        # PostgreSQL 12, as long as this transaction does not use it).
        op.execute("ALTER TYPE job_status ADD VALUE IF NOT EXISTS 'interrupted'")
    with op.batch_alter_table("ingest_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=255), nullable=True))
        if op.get_bind().dialect.name != "postgresql":
            # Elsewhere the enum is a VARCHAR sized to its longest value.
            batch_op.alter_column(
                "status",
                existing_type=sa.Enum(*OLD_STATUSES, name="job_status"),
                type_=sa.Enum(*NEW_STATUSES, name="job_status"),
                existing_nullable=False,
            )


def downgrade() -> None:
    op.execute("UPDATE ingest_jobs SET status = 'failed' WHERE status = 'interrupted'")
    # Plain DROP COLUMN, not a batch rebuild (see 0003). PostgreSQL cannot drop one value of
    # an enum type; the unused 'interrupted' stays in job_status there.
    op.drop_column("ingest_jobs", "owner")
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("ingest_jobs", schema=None) as batch_op:
            batch_op.alter_column(
                "status",
                existing_type=sa.Enum(*NEW_STATUSES, name="job_status"),
                type_=sa.Enum(*OLD_STATUSES, name="job_status"),
                existing_nullable=False,
            )
