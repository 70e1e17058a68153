"""collection evaluation sets and runs, "held" re-index jobs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # A native enum type there (see 0004). Elsewhere the enum is a VARCHAR sized to its
        # longest value, 'interrupted', which 'held' fits in: nothing to alter.
        op.execute("ALTER TYPE job_status ADD VALUE IF NOT EXISTS 'held'")
    op.create_table(
        "eval_questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("expected_filename", sa.String(length=512), nullable=False),
        sa.Column("expected_page", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("eval_questions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_questions_collection_id"), ["collection_id"], unique=False)

    op.create_table(
        "eval_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("index_kind", sa.String(length=16), nullable=False),
        sa.Column("recall_at_5", sa.Float(), nullable=False),
        sa.Column("mrr_at_10", sa.Float(), nullable=False),
        sa.Column("questions", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["ingest_jobs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("eval_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_runs_collection_id"), ["collection_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("eval_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_runs_collection_id"))
    op.drop_table("eval_runs")
    with op.batch_alter_table("eval_questions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_eval_questions_collection_id"))
    op.drop_table("eval_questions")
    # A held job's staged files are swept by the next re-index once it is no longer resumable;
    # PostgreSQL cannot drop one value of an enum type, so the unused 'held' stays there.
    op.execute("UPDATE ingest_jobs SET status = 'failed' WHERE status = 'held'")
