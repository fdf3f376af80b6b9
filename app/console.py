"""The practice console's sign-in and roles, for any front end (`web/`, the `/web` command,
`rapport web link`).

Nobody has a password: a therapist asks the bot (`/web`) or an admin the terminal for a one-time
link, valid ten minutes and good for one browser; opening it starts a console session kept in the
database (any replica serves any request), which ends after `IDLE` without a request or `LONGEST`
after it began. Who may read and change what is decided here, once (`may_read`, `may_edit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from app import instances
from app.admin import AdminError, therapist_of
from app.config import Settings
from app.runtime import Runtime, Session
from flows.instruments import SAFETY_INSTRUMENT as SAFETY
from flows.instruments import available_instruments
from storage import audit
from storage import console as rows
from storage.db import DATABASE_ERRORS, upgrade_async
from storage.models import Client, Therapist

UNAVAILABLE = DATABASE_ERRORS
"""What a page meets while the database is away (down, restarting, locked): the console says
so with 503 and a retry, as the webhook does, instead of failing."""

LINK_TTL = timedelta(minutes=10)
IDLE = timedelta(minutes=30)
LONGEST = timedelta(hours=12)


class Role(StrEnum):
    THERAPIST = "therapist"  # their own clients
    SUPERVISOR = "supervisor"  # their own clients, and reads those of whom they supervise
    ADMIN = "admin"  # everything: practice settings, people, sessions, the audit log


@dataclass(frozen=True)
class Viewer:
    """Who is signed in, as every page and form sees them."""

    therapist_id: int
    role: Role
    supervised: frozenset[int]
    csrf: str
    timezone: str
    language: str

    @property
    def actor(self) -> str:
        """How the audit log names them (the same as in Telegram)."""
        return f"therapist:{self.therapist_id}"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class NotYours(LookupError):
    """Nothing this viewer may read: shown exactly like something that does not exist."""


class ReadOnly(PermissionError):
    """The viewer may read this but not change it (a supervisor)."""


def may_read(viewer: Viewer, client: Client) -> bool:
    return (
        viewer.is_admin
        or client.therapist_id == viewer.therapist_id
        or (viewer.role is Role.SUPERVISOR and client.therapist_id in viewer.supervised)
    )


def may_edit(viewer: Viewer, client: Client) -> bool:
    return viewer.is_admin or client.therapist_id == viewer.therapist_id


def check_edit(viewer: Viewer, client: Client) -> None:
    """`NotYours` for a client the viewer cannot even read, `ReadOnly` for one they only read."""
    if not may_read(viewer, client):
        raise NotYours
    if not may_edit(viewer, client):
        raise ReadOnly


def require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise ReadOnly


def check_shipped(option: str, value: str) -> None:
    """The console names only the instruments Rapport ships (`--instrument`, or each measure of
    `--outcome`): a file on the server is the operator's to choose, with the `rapport` CLI. A
    path typed into a page is refused without being opened, so no page says which files exist."""
    shipped = available_instruments()
    pieces = value.split(",") if option == "--outcome" else [value]
    for piece in pieces:
        name = piece.strip()
        if option == "--outcome":  # measure names are read in any case; instruments are not
            name = (name.rpartition(":")[0] if ":" in name else name).strip().lower()
        if name and name not in (*shipped, "off", "default"):
            raise AdminError(
                f"{option}: the console offers {', '.join(s for s in shipped if s != SAFETY)}; "
                "a practice's own file is set with the rapport command"
            )


def readable_therapists(viewer: Viewer) -> frozenset[int] | None:
    """Whose caseloads the viewer reads; None: everybody's (an admin)."""
    if viewer.is_admin:
        return None
    return frozenset({viewer.therapist_id, *viewer.supervised})


async def open_runtime(settings: Settings) -> Runtime:
    """The runtime of a console process (`rapport web`): the schema migrated, then the keys
    checked as for any command that writes (`storage.keyring.KeyRefused` otherwise)."""
    await upgrade_async(settings.database_url)
    rt = Runtime.create(settings)
    try:
        await instances.gate(rt, "write")
    except BaseException:
        await rt.close()
        raise
    return rt


# --- sign-in ------------------------------------------------------------------------------------


async def link_token(s: Session, therapist: Therapist, now: datetime) -> str:
    """A one-time sign-in token for this therapist (the `/web` command; audited)."""
    token = await rows.create_link(s, therapist.id, now=now, ttl=LINK_TTL)
    await audit.audit(s, actor=f"therapist:{therapist.id}", action="console_link", now=now)
    return token


async def new_link_token(rt: Runtime, therapist_id: int, actor: str = "cli") -> str:
    """`rapport web link --therapist ID`: the same token, for an admin at the terminal."""
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        therapist = await therapist_of(s, therapist_id)
        token = await rows.create_link(s, therapist.id, now=now, ttl=LINK_TTL)
        await audit.audit(s, actor=actor, action="console_link", now=now)
    return token


async def sign_in(rt: Runtime, token: str) -> tuple[str, str] | None:
    """A console session (cookie token, CSRF token) for a live, unused link; None otherwise:
    expired, used before, or never issued all look the same."""
    if not 20 <= len(token) <= 64:
        return None
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        therapist_id = await rows.redeem_link(s, token, now=now)
        if therapist_id is None:
            return None
        await rows.forget_stale(s, before=now - LONGEST)
        opened = await rows.open_session(s, therapist_id, now=now)
        await audit.audit(s, actor=f"therapist:{therapist_id}", action="console_sign_in", now=now)
        return opened


async def viewer_of(rt: Runtime, cookie: str) -> Viewer | None:
    """Who holds this session cookie, if the session is live (its idle clock restarts)."""
    if not 20 <= len(cookie) <= 64:
        return None
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        found = await rows.live_session(s, cookie, now=now, idle=IDLE, longest=LONGEST)
        if found is None:
            return None
        session, therapist = found
        supervised = (
            await rows.supervised(s, therapist.id) if therapist.role == "supervisor" else ()
        )
        return Viewer(
            therapist_id=therapist.id,
            role=Role(therapist.role),
            supervised=frozenset(supervised),
            csrf=session.csrf,
            timezone=therapist.timezone,
            language=therapist.language,
        )


async def sign_out(rt: Runtime, cookie: str) -> None:
    async with rt.sessions() as s, s.begin():
        await rows.end_session(s, cookie)


# --- roles --------------------------------------------------------------------------------------


async def set_role(
    rt: Runtime,
    therapist_id: int,
    role: str,
    supervises: list[int] | None = None,
    actor: str = "cli",
) -> dict[str, object]:
    """`rapport therapist set ID --role … [--supervises ID,…]`: their console sessions end, so
    the new role counts from their next sign-in."""
    try:
        chosen = Role(role)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise AdminError(f"--role: {role!r} is not a role (choose from {names})") from None
    if supervises and chosen is not Role.SUPERVISOR:
        raise AdminError("--supervises: only a supervisor supervises (add --role supervisor)")
    now = rt.clock.now()
    async with rt.sessions() as s, s.begin():
        therapist = await therapist_of(s, therapist_id)
        for other in supervises or []:
            if other == therapist_id:
                raise AdminError("--supervises: a supervisor does not supervise themselves")
            await therapist_of(s, other)
        therapist.role = chosen.value
        if chosen is Role.SUPERVISOR and supervises is not None:
            await rows.set_supervised(s, therapist.id, supervises)
        elif chosen is not Role.SUPERVISOR:
            await rows.set_supervised(s, therapist.id, [])
        await rows.end_sessions_of(s, therapist.id)
        await audit.audit(s, actor=actor, action="set_role", now=now)
        reads = list(await rows.supervised(s, therapist.id))
    return {"id": therapist_id, "role": chosen.value, "supervises": reads}
