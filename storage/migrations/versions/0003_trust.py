"""trust: what outbox rows are about, urgent first, key canaries, running instances

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "key_canary",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("canary_enc", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_table(
        "bot_instance",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("key_ids", sa.String(length=400), nullable=False),
        sa.Column("started_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("seen_at", storage.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("bot_instance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bot_instance_seen_at"), ["seen_at"], unique=False)
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("about_client_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("priority", sa.SmallInteger(), server_default="1", nullable=False)
        )
        batch_op.create_index(
            batch_op.f("ix_outbox_about_client_id"), ["about_client_id"], unique=False
        )
        batch_op.create_foreign_key(
            "fk_outbox_about_client_id_client",
            "client",
            ["about_client_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint("fk_outbox_about_client_id_client", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_outbox_about_client_id"))
        batch_op.drop_column("priority")
        batch_op.drop_column("about_client_id")
    with op.batch_alter_table("bot_instance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bot_instance_seen_at"))
    op.drop_table("bot_instance")
    op.drop_table("key_canary")
