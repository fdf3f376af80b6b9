"""The database schema. Alembic migrations in `storage/migrations` are generated from these models.

Free text (names, comments, outgoing message bodies) lives only in `*_enc` columns, encrypted with
`storage.crypto.Cipher`; everything else is plain so the scheduler can query it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from flows.statuses import CheckinStatus, ClientStatus
from storage.types import UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Practice(Base):
    __tablename__ = "practice"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="Practice")
    bot_username: Mapped[str | None] = mapped_column(String(64))
    cadence: Mapped[str] = mapped_column(String(200), default="every 7 days at 18:00")
    quiet_hours: Mapped[str] = mapped_column(String(20), default="21:00-09:00")
    digest_lead_minutes: Mapped[int] = mapped_column(Integer, default=180)
    nudge_after_hours: Mapped[int] = mapped_column(Integer, default=48)
    expire_after_hours: Mapped[int] = mapped_column(Integer, default=96)
    language: Mapped[str] = mapped_column(String(8), default="en")
    instrument: Mapped[str] = mapped_column(String(64), default="rapport-brief")
    safety_item: Mapped[bool] = mapped_column(Boolean, default=False)
    crisis_resources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    retention_days: Mapped[int] = mapped_column(Integer, default=730)
    digest_comments: Mapped[bool] = mapped_column(Boolean, default=True)
    # Who gets an urgent alert when the client's own therapist cannot be reached.
    safety_contact_id: Mapped[int | None] = mapped_column(
        ForeignKey(
            "therapist.id",
            ondelete="SET NULL",
            use_alter=True,
            name="fk_practice_safety_contact_id_therapist",
        )
    )
    # How long an urgent alert may stay unacknowledged before it goes to the safety contact.
    alert_escalation_minutes: Mapped[int] = mapped_column(
        Integer, default=120, server_default="120"
    )
    # Outcome measures beside the alliance check, each on its own interval (`flows.measures`).
    outcomes: Mapped[str] = mapped_column(String(400), default="off", server_default="off")
    created_at: Mapped[datetime]


class Therapist(Base):
    __tablename__ = "therapist"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id"))
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    quiet_hours: Mapped[str | None] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(8), default="en")
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    unreachable_at: Mapped[datetime | None]  # blocked the bot; cleared when they unblock it
    # In the console: therapist (own clients), supervisor (reads those supervised), admin.
    role: Mapped[str] = mapped_column(String(16), default="therapist", server_default="therapist")
    created_at: Mapped[datetime]

    clients: Mapped[list[Client]] = relationship(back_populates="therapist")


class Client(Base):
    __tablename__ = "client"
    __table_args__ = (
        Index("ix_client_due", "next_checkin_at"),
        Index("ix_client_resume_due", "paused_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practice.id"))
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapist.id"), index=True)
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    alias: Mapped[str] = mapped_column(String(40))
    code: Mapped[str] = mapped_column(String(16), unique=True)
    # `flows.statuses.ClientStatus`: invited -> onboarding -> active <-> paused; stopped; declined
    status: Mapped[str] = mapped_column(String(16), default=ClientStatus.INVITED)
    timezone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))
    cadence: Mapped[str | None] = mapped_column(String(200))
    quiet_hours: Mapped[str | None] = mapped_column(String(20))
    outcomes: Mapped[str | None] = mapped_column(String(400))  # None: the practice's
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    conversation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    paused_until: Mapped[datetime | None]
    next_checkin_at: Mapped[datetime | None]
    cadence_anchor: Mapped[datetime | None]
    unreachable_at: Mapped[datetime | None]
    consent_version: Mapped[str | None] = mapped_column(String(32))
    consent_at: Mapped[datetime | None]
    joined_at: Mapped[datetime | None]
    created_at: Mapped[datetime]

    therapist: Mapped[Therapist] = relationship(back_populates="clients")


class Invite(Base):
    __tablename__ = "invite"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"))
    therapist_id: Mapped[int | None] = mapped_column(ForeignKey("therapist.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class TherapySession(Base):
    """An appointment. Its digest is due at `digest_at`; `digest_sent_at` makes it exactly-once."""

    __tablename__ = "therapy_session"
    __table_args__ = (
        Index("ix_session_digest_due", "digest_at"),
        UniqueConstraint("client_id", "source_uid", name="uq_session_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    digest_at: Mapped[datetime | None]
    digest_sent_at: Mapped[datetime | None]
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    source_uid: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]


class Checkin(Base):
    __tablename__ = "checkin"
    __table_args__ = (
        Index("ix_checkin_nudge_due", "nudge_at"),
        Index("ix_checkin_expiry_due", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    instrument: Mapped[str] = mapped_column(String(64))
    # `flows.statuses.CheckinStatus`: open -> answered | partial | missed
    status: Mapped[str] = mapped_column(String(16), default=CheckinStatus.OPEN)
    opened_at: Mapped[datetime]
    nudge_at: Mapped[datetime | None]
    nudged_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    first_answer_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class Answer(Base):
    __tablename__ = "answer"
    __table_args__ = (UniqueConstraint("checkin_id", "item", name="uq_answer_item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    checkin_id: Mapped[int] = mapped_column(
        ForeignKey("checkin.id", ondelete="CASCADE"), index=True
    )
    item: Mapped[str] = mapped_column(String(64))
    value: Mapped[int | None] = mapped_column(Integer)
    text_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    answered_at: Mapped[datetime]


class ClientEvent(Base):
    """Life events that are evidence: paused, resumed, stopped, blocked, unblocked, crisis."""

    __tablename__ = "client_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ClientNote(Base):
    """What a client asked to tell their therapist: `talk` (they would like to talk about how the
    work is going; pinned atop digests until a pre-session digest has carried it) or
    `stop_reason` (why they stopped); `reason` a fixed choice, the words encrypted."""

    __tablename__ = "client_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(String(32))
    text_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    shown_at: Mapped[datetime | None]  # a pre-session digest carried it: not pinned again


class Alert(Base):
    """An alert about a client sent (or meant) for a clinician: an urgent crisis alert, a
    withdrawal between sessions, or a digest's alert-level flags. It stays open until someone it
    was sent to acknowledges it; an urgent one still open at `escalate_at` goes once to the
    safety contact. A flag's episode lasts until a digest goes out without its signals
    (`ended_at`): until then the same flag is not raised again."""

    __tablename__ = "alert"
    __table_args__ = (Index("ix_alert_escalate_due", "escalate_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("client.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # crisis | withdrawal | flag
    # crisis: `flows.crisis.CATEGORIES` or "safety_item"; withdrawal: "missed" or "blocked";
    # flag: the alert-level signal codes, sorted, joined by ","
    cause: Mapped[str | None] = mapped_column(String(200))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    raised_at: Mapped[datetime]
    escalate_at: Mapped[datetime | None]  # cleared once acknowledged or escalated
    escalated_at: Mapped[datetime | None]
    ack_choice: Mapped[str | None] = mapped_column(String(16))  # seen | contacted | not_concern
    ack_by: Mapped[int | None] = mapped_column(ForeignKey("therapist.id", ondelete="SET NULL"))
    ack_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]  # a flag's episode: a digest went out without it


class AlertMessage(Base):
    """One message showing an alert to one clinician (the alert itself, or a line of their
    `/alerts`): its buttons go, and its text says who acknowledged, once someone does."""

    __tablename__ = "alert_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id", ondelete="CASCADE"), index=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapist.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    outbox_id: Mapped[int | None] = mapped_column(Integer, index=True)  # until it is sent
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    text_enc: Mapped[bytes] = mapped_column(LargeBinary)


class OutboxMessage(Base):
    """A message committed with the state change that caused it, sent afterwards by the sender."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "status", "not_before"),
        Index("ix_outbox_chat_queue", "chat_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), index=True
    )
    therapist_id: Mapped[int | None] = mapped_column(ForeignKey("therapist.id", ondelete="CASCADE"))
    # The client a message to someone else (a digest, an alert) is about: erased with them.
    about_client_id: Mapped[int | None] = mapped_column(
        ForeignKey("client.id", ondelete="CASCADE"), index=True
    )
    # 0 goes first (urgent alerts), then 1 (everything else).
    priority: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    kind: Mapped[str] = mapped_column(String(16))  # text | photo | edit | urgent
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary)
    # pending -> sent | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]


class ProcessedUpdate(Base):
    __tablename__ = "processed_update"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(index=True)


class AuditEvent(Base):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Supervision(Base):
    """A supervisor reads (never changes) the caseload of each therapist they supervise."""

    __tablename__ = "supervision"

    supervisor_id: Mapped[int] = mapped_column(
        ForeignKey("therapist.id", ondelete="CASCADE"), primary_key=True
    )
    therapist_id: Mapped[int] = mapped_column(
        ForeignKey("therapist.id", ondelete="CASCADE"), primary_key=True
    )


class ConsoleLink(Base):
    """A one-time sign-in link to the console (`/web`, `rapport web link`): only its hash."""

    __tablename__ = "console_link"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapist.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class ConsoleSession(Base):
    """A signed-in browser: the cookie's hash, its CSRF token, when it was last seen (idle
    expiry). In the database, so any replica serves any request."""

    __tablename__ = "console_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapist.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    seen_at: Mapped[datetime] = mapped_column(index=True)


class KeyCanary(Base):
    """Which keys the database holds data under: one short known text sealed with each key that
    has written here, never the key. A key set that cannot open every canary cannot read all the
    data, and is refused before it writes anything."""

    __tablename__ = "key_canary"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)  # hex of the token's key id
    canary_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class BotInstance(Base):
    """A running bot process, as it last reported itself: which key ids it can read, so that a
    key rotation never re-encrypts data under a key that a live bot does not have."""

    __tablename__ = "bot_instance"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_ids: Mapped[str] = mapped_column(String(400))  # comma-separated hex key ids, first encrypts
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime] = mapped_column(index=True)
