"""Sessions in the database from a therapist's calendar, and moving or cancelling them by hand.

The calendar is the source of truth for the sessions it produced. Each imported session keeps its
event's stable key in `source_uid`, so importing the same file again changes nothing, a moved event
moves its session (and the digest with it), and a cancelled event cancels it. An occurrence that
disappears from a series that is still in the file (an EXDATE, a shortened rule) is cancelled as
well; a one-off event that is simply absent is only reported as missing, since an export may cover
part of a calendar. Events are tied to clients only by an explicit client code (`#RC-7F3K`), and
only to the importing therapist's clients; anything else is listed as unmatched, never guessed.

After a change the client's next check-in is planned again, so cadences tied to sessions follow
them. An open check-in keeps the expiry it was given when it opened: it is not shortened or
stretched retroactively. A digest that has gone out is not sent again when its session moves, and
a session that has already begun gets no digest at all.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from app.admin import AdminError, session_view, therapist_of
from app.ics_import import CalendarEvent, match_client, parse_sessions
from app.planning import plan_digest, replan_client
from app.runtime import Runtime, Session
from storage import people
from storage.db import Conflict
from storage.models import Client, Practice, Therapist, TherapySession

__all__ = [
    "NO_CODE",
    "REACH",
    "SEVERAL_CODES",
    "UNKNOWN_CODE",
    "cancel_session",
    "import_ahead",
    "import_calendar",
    "move_session",
    "source_key",
    "unmatched_reason",
]

log = logging.getLogger(__name__)

NO_CODE = "no client code"
SEVERAL_CODES = "several codes"
UNKNOWN_CODE = "unknown code"

REACH = timedelta(days=366)
"""How far outside the import window an already imported session still follows its event."""

_MAX_UID = 200  # longer UIDs are stored hashed, so a key always fits source_uid (255)
_STAMP = re.compile(r"\d{8}T\d{6}Z")
_CODE_MENTION = re.compile(r"#[A-Za-z0-9]|\[\s*[A-Za-z0-9][A-Za-z0-9_-]*\s*\]")
"""Something written the way a client code is written (`#CODE` or `[CODE]`)."""


# --- keys and reasons -----------------------------------------------------------------------


def _series_id(uid: str) -> str:
    if len(uid) <= _MAX_UID:
        return uid
    return "sha256:" + hashlib.sha256(uid.encode("utf-8")).hexdigest()


def source_key(event: CalendarEvent) -> str:
    """The `source_uid` stored for an event's session: its UID, plus the original start of the
    occurrence for a series (unchanged when that one instance is moved)."""
    series = _series_id(event.uid)
    if event.recurrence_id is None:
        return series
    return f"{series}@{event.recurrence_id.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _series_of(key: str) -> str:
    head, sep, tail = key.rpartition("@")
    return head if sep and _STAMP.fullmatch(tail) else key


def unmatched_reason(event: CalendarEvent, codes: Mapping[str, int]) -> str | None:
    """Why an event names no single client of `codes` (None: it names exactly one)."""
    if match_client(event, codes) is not None:
        return None
    named = {client for code, client in codes.items() if match_client(event, {code: client})}
    if len(named) > 1:
        return SEVERAL_CODES
    if _CODE_MENTION.search(f"{event.summary}\n{event.description}"):
        return UNKNOWN_CODE
    return NO_CODE


# --- shared by import, move and cancel ------------------------------------------------------


def _view(session: TherapySession) -> dict[str, Any]:
    return {**session_view(session), "from_calendar": session.source_uid is not None}


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise AdminError(f"{name} needs a UTC offset, e.g. 2026-03-02T15:00:00+01:00")


# --- import ---------------------------------------------------------------------------------


@dataclass
class _Import:
    """One import's working state inside its transaction, and what it reports."""

    s: Session
    now: datetime
    therapist: Therapist
    practice: Practice
    clients: dict[int, Client]
    stored: dict[str, list[TherapySession]]
    dry_run: bool
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("created", "moved", "unchanged", "cancelled", "restored", "merged"), 0
        )
    )
    changes: list[dict[str, Any]] = field(default_factory=list)
    unmatched: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    touched: set[int] = field(default_factory=set)

    def record(
        self, action: str, session: TherapySession | None, client_id: int, starts_at: datetime
    ) -> None:
        self.counts[action] += 1
        if action == "unchanged":
            return
        self.touched.add(client_id)
        not_written = self.dry_run and action == "created"  # its id would not exist
        self.changes.append(
            {
                "action": action,
                "session": session.id if session is not None and not not_written else None,
                "client": client_id,
                "starts_at": starts_at.isoformat(),
            }
        )

    def cancel(self, session: TherapySession) -> None:
        session.cancelled = True
        self.record("cancelled", session, session.client_id, session.starts_at)

    def place(self, session: TherapySession, event: CalendarEvent) -> bool:
        """Put a stored session at its event's times; True if anything changed."""
        if session.starts_at == event.start and session.ends_at == event.end:
            return False
        session.starts_at, session.ends_at = event.start, event.end
        plan_digest(session, self.therapist, self.practice, self.now)
        return True

    async def follow(self, event: CalendarEvent, client_id: int, key: str) -> None:
        """Bring the client's session for this event in line with it."""
        existing = self.stored.get(key, [])
        mine = next((x for x in existing if x.client_id == client_id), None)
        for other in existing:  # the event now names another client: its old session ends
            if other.client_id != client_id and not other.cancelled:
                self.cancel(other)
        if event.cancelled:
            if mine is not None and not mine.cancelled:
                self.cancel(mine)
            else:
                self.record("unchanged", mine, client_id, event.start)
        elif mine is None:
            await self.create(event, client_id, key)
        elif mine.cancelled:
            mine.cancelled = False
            mine.starts_at, mine.ends_at = event.start, event.end
            plan_digest(mine, self.therapist, self.practice, self.now)
            self.record("restored", mine, client_id, mine.starts_at)
        elif self.place(mine, event):
            self.record("moved", mine, client_id, mine.starts_at)
        else:
            self.record("unchanged", mine, client_id, mine.starts_at)

    async def create(self, event: CalendarEvent, client_id: int, key: str) -> None:
        same = await people.live_session_at(self.s, client_id, event.start)
        if same is not None:  # added by hand, or a second event at the same time: one session
            if same.source_uid is None:
                same.source_uid = key  # from now on it follows this event
                self.stored.setdefault(key, []).append(same)
            self.record("merged", same, client_id, same.starts_at)
            return
        minutes = max(1, round((event.end - event.start).total_seconds() / 60))
        session = await people.add_session(
            self.s,
            client_id=client_id,
            starts_at=event.start,
            minutes=minutes,
            now=self.now,
            source_uid=key,
        )
        session.ends_at = event.end  # exact, even for lengths that are not whole minutes
        plan_digest(session, self.therapist, self.practice, self.now)
        self.stored.setdefault(key, []).append(session)
        self.record("created", session, client_id, session.starts_at)

    def vanished(self, seen: set[str], window: tuple[datetime, datetime]) -> None:
        """Sessions in the window whose events are no longer in the file."""
        series = {_series_of(key) for key in seen}
        for key, sessions in self.stored.items():
            if key in seen:
                continue
            for session in sessions:
                if session.cancelled or not window[0] <= session.starts_at < window[1]:
                    continue
                if _series_of(key) in series:
                    self.cancel(session)  # the series is there and says it has no such instance
                else:
                    self.missing.append(
                        {
                            "session": session.id,
                            "client": session.client_id,
                            "starts_at": session.starts_at.isoformat(),
                        }
                    )

    async def replan(self) -> None:
        for client_id in sorted(self.touched):
            await replan_client(self.s, self.clients[client_id], self.practice, self.now)

    def report(self, window: tuple[datetime, datetime]) -> dict[str, Any]:
        return {
            "therapist": self.therapist.id,
            "window": {"start": window[0].isoformat(), "end": window[1].isoformat()},
            "dry_run": self.dry_run,
            **self.counts,
            "unmatched": self.unmatched,
            "missing": self.missing,
            "changes": self.changes,
        }


async def _imported_sessions(
    s: Session, client_ids: Iterable[int]
) -> dict[str, list[TherapySession]]:
    stored: dict[str, list[TherapySession]] = {}
    for session in await people.imported_sessions(s, client_ids):
        assert session.source_uid is not None
        stored.setdefault(session.source_uid, []).append(session)
    return stored


def _distinct(events: Sequence[CalendarEvent]) -> list[tuple[str, CalendarEvent]]:
    """Each occurrence once (the first one wins if a file repeats an instance)."""
    seen: set[str] = set()
    out: list[tuple[str, CalendarEvent]] = []
    for event in events:
        key = source_key(event)
        if key not in seen:
            seen.add(key)
            out.append((key, event))
    return out


async def import_calendar(
    rt: Runtime,
    ics: bytes,
    *,
    therapist_id: int,
    window_start: datetime,
    window_end: datetime,
    default_minutes: int = 50,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Match a therapist's calendar (ICS bytes) to their clients and store the sessions.

    New sessions are created for events starting in [window_start, window_end); sessions imported
    before follow their events up to `REACH` beyond it. Floating times are read in the
    therapist's zone. The whole import is one transaction; with `dry_run` it is rolled back and
    the report says what would have happened. Returns counts (`created`, `moved`, `unchanged`,
    `cancelled`, `restored`), `unmatched` events (uid, start, reason; never their text),
    `missing` sessions whose one-off event is gone from the file (left as they are), and
    `changes`, one line per session touched, and `problems`: events skipped or properties
    ignored because they could not be read (by position and UID, never their text).
    """
    _require_aware("window_start", window_start)
    _require_aware("window_end", window_end)
    window = (window_start.astimezone(UTC), window_end.astimezone(UTC))
    if window[1] <= window[0]:
        raise AdminError("the import window must end after it starts")
    now = rt.clock.now()
    async with rt.sessions() as s:
        therapist = await therapist_of(s, therapist_id)
        problems: list[str] = []
        try:
            events = parse_sessions(
                ics,
                window_start=window[0] - REACH,
                window_end=window[1] + REACH,
                default_minutes=default_minutes,
                default_tz=therapist.timezone,
                problems=problems,
            )
        except ValueError as exc:
            raise AdminError(f"calendar: {exc}") from None
        clients = {c.id: c for c in await people.list_clients(s, therapist_id)}
        work = _Import(
            s=s,
            now=now,
            therapist=therapist,
            practice=await people.get_practice(s, now),
            clients=clients,
            stored=await _imported_sessions(s, clients),
            dry_run=dry_run,
        )
        codes = {c.code: c.id for c in clients.values()}
        try:
            await _apply(work, _distinct(events), codes, window)
            report = {**work.report(window), "problems": problems}
            if dry_run:
                await s.rollback()
            else:
                await s.commit()
        except Conflict:
            await s.rollback()
            raise AdminError(
                "another change to the same sessions happened at the same time; import again"
            ) from None
    log.info(
        "calendar import for therapist %s%s: %s created, %s moved, %s cancelled, %s restored, "
        "%s unchanged, %s merged, %s unmatched, %s missing, %s unreadable",
        therapist_id,
        " (dry run)" if dry_run else "",
        report["created"],
        report["moved"],
        report["cancelled"],
        report["restored"],
        report["unchanged"],
        report["merged"],
        len(report["unmatched"]),
        len(report["missing"]),
        len(problems),
    )
    return report


async def import_ahead(
    rt: Runtime, ics: bytes, *, therapist_id: int, days: int = 90, dry_run: bool = False
) -> dict[str, Any]:
    """`import_calendar` over the coming `days` (from yesterday): `rapport session import`
    and the console's upload alike."""
    now = rt.clock.now()
    return await import_calendar(
        rt,
        ics,
        therapist_id=therapist_id,
        window_start=now - timedelta(days=1),
        window_end=now + timedelta(days=days),
        dry_run=dry_run,
    )


async def _apply(
    work: _Import,
    events: list[tuple[str, CalendarEvent]],
    codes: Mapping[str, int],
    window: tuple[datetime, datetime],
) -> None:
    for key, event in events:
        in_window = window[0] <= event.start < window[1]
        if not in_window and key not in work.stored:
            continue
        client_id = match_client(event, codes)
        if client_id is None:
            if in_window and not event.cancelled:
                work.unmatched.append(
                    {
                        "uid": event.uid,
                        "start": event.start.isoformat(),
                        "reason": unmatched_reason(event, codes),
                    }
                )
            continue
        await work.follow(event, client_id, key)
    work.vanished({key for key, _ in events}, window)
    await work.replan()


# --- by hand --------------------------------------------------------------------------------


async def _session_and_client(
    s: Session, session_id: int
) -> tuple[TherapySession, Client, Therapist]:
    session = await people.session_by_id(s, session_id)
    if session is None:
        raise AdminError(f"no session with id {session_id}")
    client = await people.client_by_id(s, session.client_id)
    assert client is not None
    therapist = await people.therapist_by_id(s, client.therapist_id)
    assert therapist is not None
    return session, client, therapist


async def cancel_session(rt: Runtime, session_id: int) -> dict[str, Any]:
    """Cancel a session: no digest for it, and the client's next check-in is planned again.

    Cancelling twice is harmless. A session imported from a calendar comes back on the next
    import if the calendar still has it (`from_calendar` in the result says so).
    """
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        session, client, _ = await _session_and_client(s, session_id)
        if not session.cancelled:
            session.cancelled = True
            await replan_client(s, client, await people.get_practice(s, now), now)
        return _view(session)


async def move_session(
    rt: Runtime, session_id: int, new_start: datetime, minutes: int | None = None
) -> dict[str, Any]:
    """Move a session to `new_start` (keeping its length unless `minutes` is given).

    The digest is planned for the new time unless it has already gone out, and the client's next
    check-in is planned again. A cancelled session cannot be moved (add a new one instead).
    """
    _require_aware("the new session time", new_start)
    if minutes is not None and minutes <= 0:
        raise AdminError("--minutes must be positive")
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        session, client, therapist = await _session_and_client(s, session_id)
        if session.cancelled:
            raise AdminError(f"session {session_id} is cancelled; add a new one instead")
        length = (
            timedelta(minutes=minutes)
            if minutes is not None
            else session.ends_at - session.starts_at
        )
        session.starts_at = new_start.astimezone(UTC)
        session.ends_at = session.starts_at + length
        practice = await people.get_practice(s, now)
        plan_digest(session, therapist, practice, now)
        await replan_client(s, client, practice, now)
        return _view(session)
