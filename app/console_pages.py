"""What the console's caseload and client pages show, and what their forms change: plain data,
decided and audited here (like `/digest`), rendered by `web/`.

Each function runs one unit of work. A client is reached by their calendar code (never a name in
a URL); one the viewer may not read is `console.NotYours`, exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from app import admin
from app import caseload as staff
from app.admin import AdminError, check_cadence
from app.console import (
    NotYours,
    Viewer,
    check_edit,
    check_shipped,
    may_edit,
    may_read,
    readable_therapists,
)
from app.console_alerts import OpenAlert, visible
from app.conversation import After
from app.history import build_history, caseload_histories
from app.runtime import Runtime, Session, after_commit
from flows.lifecycle import PAUSABLE
from flows.statuses import ClientStatus
from insights import config
from insights.history import CheckinRecord, ClientHistory
from insights.signals import SEVERITY_RANK, Signal, detect, rank_and_merge
from insights.thresholds import Thresholds
from storage import audit, checkins, people
from storage.models import Client, Practice, TherapySession

SPARK_POINTS = 12
MAX_PAUSE_DAYS = 365


@dataclass(frozen=True)
class CaseloadRow:
    """One client on the caseload page."""

    code: str
    alias: str
    therapist_id: int
    status: str
    last_checkin_at: datetime | None
    last_checkin_status: str | None
    totals: tuple[int | None, ...]  # the latest alliance totals, oldest first (the sparkline)
    signals: tuple[Signal, ...]  # most serious first
    crises: int  # urgent alerts since the last session
    next_session: datetime | None
    next_checkin_at: datetime | None
    attention: int  # 3 urgent alert, 2 alert, 1 watch, 0 nothing: the page sorts by it
    open_urgent: int = 0  # alerts nobody has acknowledged yet
    open_flags: int = 0

    @property
    def flags(self) -> tuple[Signal, ...]:
        """The signals worth a flag (watch or alert)."""
        return tuple(x for x in self.signals if x.severity != "info")


@dataclass(frozen=True)
class CheckinLine:
    opened_at: datetime
    status: str
    scores: dict[str, int | None]
    total: int | None
    wellbeing: int | None
    comment: str | None  # only when the practice lets the client's words travel


@dataclass(frozen=True)
class SessionLine:
    id: int
    starts_at: datetime
    digest_at: datetime | None
    digest_sent: bool


@dataclass(frozen=True)
class ClientPage:
    code: str
    alias: str
    therapist_id: int
    status: str
    timezone: str | None
    language: str | None
    quiet_hours: str | None  # the client's own; None: the practice's
    own_cadence: str | None
    cadence: str
    own_outcomes: str | None  # the client's own outcome measures; None: the practice's
    outcomes: str  # the measures in force, as stored ("off" for none)
    next_checkin_at: datetime | None
    checkins: tuple[CheckinLine, ...]  # newest first
    signals: tuple[Signal, ...]
    crises: tuple[tuple[datetime, str | None, str | None], ...]  # when, what kind, who was told
    sessions: tuple[SessionLine, ...]
    editable: bool
    pausable: bool
    paused: bool
    joined: bool
    words_shown: bool
    alerts: tuple[OpenAlert, ...] = ()  # open, with the answers the viewer may give


def total_of(record: CheckinRecord) -> int | None:
    values = [record.scores.get(item) for item in config.ALLIANCE_ITEMS]
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def attention_of(signals: list[Signal], crises: int, open_flags: int = 0) -> int:
    """Urgent alerts (open or since the last session) first; an open flag counts as an alert."""
    if crises:
        return 3
    flagged = SEVERITY_RANK["alert"] if open_flags else 0
    return max((SEVERITY_RANK[x.severity] for x in signals), default=flagged)


def crises_since_last_session(history: ClientHistory, now: datetime) -> int:
    past = [x for x in history.sessions if x <= now]
    since = past[-1] if past else None
    return sum(1 for c in history.crises if since is None or c.at > since)


async def caseload(
    rt: Runtime, viewer: Viewer, therapist_id: int | None = None
) -> list[CaseloadRow]:
    """Every client the viewer reads (or one therapist's of them), who needs attention first.
    An admin sees one therapist's at a time (their own unless told): a whole practice's
    caseload is a report, not a page."""
    now = rt.clock.now()
    allowed = readable_therapists(viewer)
    if therapist_id is None and allowed is None:
        therapist_id = viewer.therapist_id
    if therapist_id is not None:
        if allowed is not None and therapist_id not in allowed:
            raise NotYours
        allowed = frozenset({therapist_id})
    async with rt.sessions() as s, s.begin():
        practice = await people.get_practice(s, now)
        clients = await people.clients_of(s, allowed)
        histories = await caseload_histories(s, rt.cipher, clients, practice)
        open_by_code: dict[str, list[OpenAlert]] = {}
        for alert in await visible(s, rt, viewer, {c.id for c in clients}):
            open_by_code.setdefault(alert.client_code, []).append(alert)
        thresholds = Thresholds()
        rows = []
        for client in clients:
            history = histories[client.id]
            signals = rank_and_merge(detect(history, now, thresholds, lang=viewer.language))
            mine = open_by_code.get(client.code, [])
            urgent = sum(1 for a in mine if a.urgent)
            crises = crises_since_last_session(history, now)
            last = history.checkins[-1] if history.checkins else None
            upcoming = [x for x in history.sessions if x > now]
            rows.append(
                CaseloadRow(
                    code=client.code,
                    alias=client.alias,
                    therapist_id=client.therapist_id,
                    status=client.status,
                    last_checkin_at=last.sent_at if last else None,
                    last_checkin_status=last.status if last else None,
                    totals=tuple(total_of(r) for r in history.checkins[-SPARK_POINTS:]),
                    signals=tuple(signals),
                    crises=crises,
                    next_session=upcoming[0] if upcoming else None,
                    next_checkin_at=client.next_checkin_at,
                    attention=attention_of(signals, crises + urgent, len(mine) - urgent),
                    open_urgent=urgent,
                    open_flags=len(mine) - urgent,
                )
            )
        await audit.audit(s, actor=viewer.actor, action="console_caseload", now=now)
    far = datetime.max.replace(tzinfo=now.tzinfo)
    rows.sort(key=lambda r: (-r.attention, -len(r.flags), r.next_session or far, r.alias))
    return rows


async def caseload_choices(rt: Runtime, viewer: Viewer) -> list[tuple[int, str]]:
    """Whose caseload the viewer may open (id, name), when more than their own."""
    readable = readable_therapists(viewer)
    if readable is not None and len(readable) < 2:
        return []
    return [
        (t["id"], t["name"])
        for t in await admin.list_therapists(rt)
        if readable is None or t["id"] in readable
    ]


async def _client(s: Session, viewer: Viewer, code: str) -> Client:
    client = await people.client_by_code(s, code) if _looks_like_code(code) else None
    if client is None or not may_read(viewer, client):
        raise NotYours
    return client


def _looks_like_code(code: str) -> bool:
    """Worth a query: a client code is short, letters, digits and hyphens (`RC-7F3K`)."""
    return 0 < len(code) <= 16 and all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in code)


async def client_page(rt: Runtime, viewer: Viewer, code: str) -> ClientPage:
    """Everything about one client the viewer may read (audited as a read of their data)."""
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        client = await _client(s, viewer, code)
        practice = await people.get_practice(s, now)
        rows = await checkins.checkins_of(s, client.id)
        answers = await checkins.answers_of_client(s, client.id) if rows else ()
        events = await checkins.events_of(s, client.id)
        planned = await people.list_sessions(s, client.id)
        live = [x for x in planned if not x.cancelled]
        history = build_history(rt.cipher, client, practice, rows, answers, events, live)
        signals = rank_and_merge(detect(history, now, Thresholds(), lang=viewer.language))
        await audit.audit(
            s, actor=viewer.actor, action="console_client", now=now, client_id=client.id
        )
        page = _page(viewer, client, practice, history, signals, live, now)
        open_alerts = await visible(s, rt, viewer, {client.id})
    return replace(page, alerts=tuple(open_alerts))


def _page(
    viewer: Viewer,
    client: Client,
    practice: Practice,
    history: ClientHistory,
    signals: list[Signal],
    sessions: Sequence[TherapySession],
    now: datetime,
) -> ClientPage:
    words = practice.digest_comments
    lines = tuple(
        CheckinLine(
            opened_at=r.sent_at,
            status=r.status,
            scores=dict(r.scores),
            total=total_of(r),
            wellbeing=r.scores.get(config.WELLBEING_ITEM),
            comment=r.comment if words else None,
        )
        for r in reversed(history.checkins)
    )
    return ClientPage(
        code=client.code,
        alias=client.alias,
        therapist_id=client.therapist_id,
        status=client.status,
        timezone=client.timezone,
        language=client.language,
        quiet_hours=client.quiet_hours,
        own_cadence=client.cadence,
        cadence=client.cadence or practice.cadence,
        own_outcomes=client.outcomes,
        outcomes=client.outcomes if client.outcomes is not None else practice.outcomes,
        next_checkin_at=client.next_checkin_at,
        checkins=lines,
        signals=tuple(signals),
        crises=tuple((c.at, c.category, c.alerted) for c in reversed(history.crises)),
        sessions=tuple(
            SessionLine(x.id, x.starts_at, x.digest_at, x.digest_sent_at is not None)
            for x in sessions
            if x.starts_at > now - timedelta(days=60)
        ),
        editable=may_edit(viewer, client),
        pausable=client.status in PAUSABLE,
        paused=client.status == ClientStatus.PAUSED,
        joined=client.telegram_user_id is not None,
        words_shown=words,
    )


# --- changes ------------------------------------------------------------------------------------


async def set_cadence(
    rt: Runtime, viewer: Viewer, code: str, spec: str
) -> tuple[str, datetime | None]:
    """The client's own cadence (`default`: the practice's), checked as the CLI checks it; the
    cadence in force and the next check-in it gives."""
    spec = spec.strip()
    cadence = None if spec.lower() in ("", "default") else check_cadence(spec)
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        client = await _client(s, viewer, code)
        check_edit(viewer, client)
        done = await staff.set_cadence(s, client, cadence, now)
        await audit.audit(s, actor=viewer.actor, action="set_cadence", now=now, client_id=client.id)
    return done


async def set_client(
    rt: Runtime,
    viewer: Viewer,
    code: str,
    zone: str,
    language: str,
    quiet_hours: str,
    outcomes: str = "",
) -> None:
    """`rapport client set` from the client page: time zone, language, quiet hours, outcome
    measures ("default": the practice's), by the CLI's rules; a field left empty changes
    nothing."""
    async with rt.sessions() as s:
        client = await _client(s, viewer, code)
        check_edit(viewer, client)
        client_id = client.id
    check_shipped("--outcome", outcomes)
    await admin.client_set(
        rt,
        client_id,
        timezone=zone.strip() or None,
        language=language.strip() or None,
        quiet_hours=quiet_hours.strip() or None,
        outcomes=[outcomes.strip()] if outcomes.strip() else None,
    )
    async with rt.sessions() as s, s.begin():
        await audit.audit(
            s, actor=viewer.actor, action="client_set", now=rt.clock.now(), client_id=client_id
        )


async def pause(rt: Runtime, viewer: Viewer, code: str, days: int | None) -> None:
    """The same pause as `/pause` (told to the client); `days` None: until resumed."""
    if days is not None and not 1 <= days <= MAX_PAUSE_DAYS:
        raise AdminError(f"pause: between 1 and {MAX_PAUSE_DAYS} days, or until resumed")
    await _change(rt, viewer, code, "pause", days)


async def resume(rt: Runtime, viewer: Viewer, code: str) -> None:
    await _change(rt, viewer, code, "resume", None)


async def _change(rt: Runtime, viewer: Viewer, code: str, what: str, days: int | None) -> None:
    now = rt.clock.now()
    after = After()
    async with rt.sessions() as s, s.begin():
        client = await _client(s, viewer, code)
        check_edit(viewer, client)
        if what == "pause":
            if client.status not in PAUSABLE:
                raise AdminError(f"{client.alias} is not active: nothing to pause")
            until = now + timedelta(days=days) if days else None
            await staff.pause(s, rt, client, until, now, after)
        else:
            if client.status != ClientStatus.PAUSED:
                raise AdminError(f"{client.alias} is not paused")
            await staff.resume(s, rt, client, now, after)
        await audit.audit(s, actor=viewer.actor, action=what, now=now, client_id=client.id)
        after_commit(s, lambda: _wake(rt, after))


def _wake(rt: Runtime, after: After) -> None:
    if after.handed:
        rt.hand_over(after.handed)
    rt.wake_sender()


async def new_invite(rt: Runtime, viewer: Viewer, code: str) -> tuple[str, int]:
    """A new invite link for a client who has not joined (older links stop working)."""
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        client = await _client(s, viewer, code)
        check_edit(viewer, client)
        therapist = await people.therapist_by_id(s, client.therapist_id)
        assert therapist is not None
        try:
            invited = await staff.renew_invite(s, rt, therapist, client, now, by=viewer.actor)
        except staff.AlreadyJoined:
            raise AdminError(
                f"{client.alias} has joined already; a new account is a move (rapport client move)"
            ) from None
        except RuntimeError:
            raise AdminError(
                "no invite link: the bot's Telegram username is not known until it has started"
            ) from None
    return invited.link, invited.days
