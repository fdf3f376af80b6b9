"""client notes: a client's request to talk about the work, and why they stopped

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "client_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("text_enc", sa.LargeBinary(), nullable=True),
        sa.Column("shown_at", storage.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_client_note_client_id", "client_note", ["client_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_client_note_client_id", table_name="client_note")
    op.drop_table("client_note")
