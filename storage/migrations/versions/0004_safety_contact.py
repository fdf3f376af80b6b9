"""safety contact: who is alerted when a client's therapist cannot be reached; therapists who
blocked the bot

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("practice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("safety_contact_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_practice_safety_contact_id_therapist",
            "therapist",
            ["safety_contact_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("therapist", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unreachable_at", storage.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("therapist", schema=None) as batch_op:
        batch_op.drop_column("unreachable_at")
    with op.batch_alter_table("practice", schema=None) as batch_op:
        batch_op.drop_constraint("fk_practice_safety_contact_id_therapist", type_="foreignkey")
        batch_op.drop_column("safety_contact_id")
