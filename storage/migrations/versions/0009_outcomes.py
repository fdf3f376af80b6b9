"""outcomes: outcome measures (PHQ-9, GAD-7) on their own interval, for the practice and a client

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("practice", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("outcomes", sa.String(length=400), nullable=False, server_default="off")
        )
    with op.batch_alter_table("client", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcomes", sa.String(length=400), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("client", schema=None) as batch_op:
        batch_op.drop_column("outcomes")
    with op.batch_alter_table("practice", schema=None) as batch_op:
        batch_op.drop_column("outcomes")
