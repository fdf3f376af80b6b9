"""console: staff roles and supervision, one-time sign-in links and console sessions

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("therapist", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=16), nullable=False, server_default="therapist")
        )
    op.create_table(
        "supervision",
        sa.Column("supervisor_id", sa.Integer(), nullable=False),
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["supervisor_id"], ["therapist.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["therapist_id"], ["therapist.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("supervisor_id", "therapist_id"),
    )
    op.create_table(
        "console_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["therapist_id"], ["therapist.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "console_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("seen_at", storage.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["therapist_id"], ["therapist.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_console_session_seen_at", "console_session", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_console_session_seen_at", table_name="console_session")
    op.drop_table("console_session")
    op.drop_table("console_link")
    op.drop_table("supervision")
    with op.batch_alter_table("therapist", schema=None) as batch_op:
        batch_op.drop_column("role")
