"""alerts: each alert about a client stored with its messages, its acknowledgement and its
escalation; the practice's wait before an unacknowledged urgent alert escalates

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("practice", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "alert_escalation_minutes", sa.Integer(), nullable=False, server_default="120"
            )
        )
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("raised_at", storage.types.UTCDateTime(), nullable=False),
        sa.Column("escalate_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("escalated_at", storage.types.UTCDateTime(), nullable=True),
        sa.Column("ack_choice", sa.String(length=16), nullable=True),
        sa.Column("ack_by", sa.Integer(), nullable=True),
        sa.Column("ack_at", storage.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["ack_by"], ["therapist.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_client_id", "alert", ["client_id"], unique=False)
    op.create_index("ix_alert_escalate_due", "alert", ["escalate_at"], unique=False)
    op.create_table(
        "alert_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.Column("text_enc", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alert.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["therapist_id"], ["therapist.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_message_alert_id", "alert_message", ["alert_id"], unique=False)
    op.create_index("ix_alert_message_outbox_id", "alert_message", ["outbox_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_alert_message_outbox_id", table_name="alert_message")
    op.drop_index("ix_alert_message_alert_id", table_name="alert_message")
    op.drop_table("alert_message")
    op.drop_index("ix_alert_escalate_due", table_name="alert")
    op.drop_index("ix_alert_client_id", table_name="alert")
    op.drop_table("alert")
    with op.batch_alter_table("practice", schema=None) as batch_op:
        batch_op.drop_column("alert_escalation_minutes")
