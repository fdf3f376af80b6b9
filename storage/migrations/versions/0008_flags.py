"""flags: a digest's alert-level flags raise alerts; a flag's episode ends

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        # a flag's cause names every alert-level signal of its digest
        batch_op.alter_column(
            "cause",
            existing_type=sa.String(length=32),
            type_=sa.String(length=200),
            existing_nullable=True,
        )
        batch_op.add_column(sa.Column("ended_at", storage.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_column("ended_at")
        batch_op.alter_column(
            "cause",
            existing_type=sa.String(length=200),
            type_=sa.String(length=32),
            existing_nullable=True,
        )
