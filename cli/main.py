"""The `rapport` command (also `python -m bot`): the practice admin's interface.

Every listing or creating command takes `--json`. Configuration errors end with one line naming
the setting and exit code 2; operator mistakes (unknown id, bad cadence) with one line and code 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from app import admin, instances
from app.config import ConfigError, Settings, load_settings
from app.runtime import Runtime
from bot.identity import ask_username
from flows.parsing import is_number
from storage import keyring
from storage.crypto import undecryptable
from storage.db import DATABASE_ERRORS

T = TypeVar("T")

# The help shows line breaks as written: only the blank lines between paragraphs are kept.
_HELP = "\n\n".join(" ".join(part.split()) for part in (__doc__ or "").split("\n\n"))
# A crash's traceback never shows local variables: they hold names, comments, keys and tokens.
NO_LOCALS: dict[str, Any] = {"pretty_exceptions_show_locals": False}
commands = typer.Typer(no_args_is_help=True, add_completion=False, help=_HELP, **NO_LOCALS)
db_app = typer.Typer(no_args_is_help=True, help="The database schema.", **NO_LOCALS)
practice_app = typer.Typer(no_args_is_help=True, help="Practice defaults.", **NO_LOCALS)
therapist_app = typer.Typer(no_args_is_help=True, help="Therapists.", **NO_LOCALS)
client_app = typer.Typer(no_args_is_help=True, help="Clients.", **NO_LOCALS)
session_app = typer.Typer(
    no_args_is_help=True, help="Therapy sessions (appointments).", **NO_LOCALS
)
keys_app = typer.Typer(no_args_is_help=True, help="Encryption keys.", **NO_LOCALS)
web_app = typer.Typer(
    invoke_without_command=True, help="The practice console (web pages).", **NO_LOCALS
)
for sub, name in (
    (db_app, "db"),
    (practice_app, "practice"),
    (therapist_app, "therapist"),
    (client_app, "client"),
    (session_app, "session"),
    (keys_app, "keys"),
    (web_app, "web"),
):
    commands.add_typer(sub, name=name)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
YesOpt = Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")]


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"rapport: {message}", err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        fail(str(exc), 2)
        raise  # unreachable


def with_runtime(work: Callable[[Runtime], Awaitable[T]], mode: keyring.Mode | None = "write") -> T:
    """Run one coroutine against the configured database, turning operator errors into one line.

    First the keys are checked against the database (`storage.keyring`): `mode` "read" for
    commands that only read, "write" (the default) for the rest; None for a command that checks
    them itself. A refused key set ends here, in one line, before anything is written."""
    conf = settings()

    async def go() -> T:
        rt = Runtime.create(conf)
        rt.ask_bot_username = functools.partial(ask_username, conf)
        try:
            if mode is not None:
                await instances.gate(rt, mode)
            return await work(rt)
        finally:
            await rt.close()

    with setup_errors():
        try:
            return asyncio.run(go())
        except admin.AdminError as exc:
            fail(str(exc))
        except ValueError as exc:
            if not undecryptable(exc):
                raise
            fail(
                "RAPPORT_ENCRYPTION_KEY: a stored text cannot be decrypted with the configured "
                "keys (was it written with another key?)",
                2,
            )
    raise AssertionError("unreachable")


@contextlib.contextmanager
def setup_errors() -> Iterator[None]:
    """A setting, the keys or the database that will not do: one line, exit code 2 (1 for a key
    set refused for now), for the one-shot commands and for `rapport run` alike."""
    try:
        yield
    except ConfigError as exc:
        fail(str(exc), 2)
    except keyring.KeysCannotRead as exc:
        fail(str(exc), 2)
    except keyring.KeyRefused as exc:
        fail(str(exc))
    except DATABASE_ERRORS as exc:
        fail(database_problem(exc), 2)


def database_problem(exc: BaseException) -> str:
    """One line for a database that cannot be opened or reached (no traceback, no password)."""
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
    return f"RAPPORT_DATABASE_URL: the database cannot be used ({reason})"


def json_text(data: Any) -> str:
    """How every command writes JSON: readable, and non-ASCII names as they are."""
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)


def show(data: Any, as_json: bool, text: Callable[[Any], str] | None = None) -> None:
    if as_json:
        typer.echo(json_text(data))
    elif text is not None:
        typer.echo(text(data))
    elif isinstance(data, list):
        for row in data:
            typer.echo("  ".join(f"{k}={v}" for k, v in row.items()))
        if not data:
            typer.echo("(none)")
    else:
        for key, value in data.items():
            typer.echo(f"{key}: {value}")


def invite_line(d: dict[str, Any]) -> str:
    return f"\ninvite link: {d['invite_link']}" if d["invite_link"] else ""


def show_added(d: dict[str, Any], as_json: bool, headline: Callable[[dict[str, Any]], str]) -> None:
    """A person just added, with their invite link; said loudly when no link could be made: the
    person is stored, but cannot join yet. On standard error for people; as a `warning` field
    for `--json` readers."""
    if not d["invite_link"]:
        who = "client" if "code" in d else "therapist"
        warning = admin.no_username(who, d["id"])
        if as_json:
            d = {**d, "warning": warning}
        else:
            typer.echo(f"rapport: warning: {warning}", err=True)
    show(d, as_json, lambda added: headline(added) + invite_line(added))


# --- db ---------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema (Alembic)."""
    from storage.db import upgrade

    conf = settings()
    with setup_errors():
        upgrade(conf.database_url)
    typer.echo("database is at the latest schema")


# --- keys -------------------------------------------------------------------------------------


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new key for RAPPORT_ENCRYPTION_KEY (put new keys first to rotate)."""
    from storage.crypto import Cipher

    typer.echo(Cipher.generate_key())


# --- practice ---------------------------------------------------------------------------------


@practice_app.command("set")
def practice_set(
    cadence: Annotated[str | None, typer.Option(help="e.g. 'every 7 days at 18:00'")] = None,
    quiet_hours: Annotated[str | None, typer.Option(help="e.g. 21:00-09:00")] = None,
    digest_lead: Annotated[str | None, typer.Option(help="e.g. 3h")] = None,
    nudge_after: Annotated[str | None, typer.Option(help="e.g. 2d, or off")] = None,
    expire_after: Annotated[str | None, typer.Option(help="e.g. 4d")] = None,
    language: Annotated[str | None, typer.Option(help="en, es or ru")] = None,
    instrument: Annotated[str | None, typer.Option(help="instrument id")] = None,
    outcome: Annotated[
        list[str] | None,
        typer.Option(help="NAME:INTERVAL beside the alliance check, e.g. phq-9:14d; off"),
    ] = None,
    safety_item: Annotated[bool | None, typer.Option("--safety-item/--no-safety-item")] = None,
    crisis_resources: Annotated[
        str | None, typer.Option(help="LANG=TEXT, e.g. 'en=Call 999 or Samaritans 116 123'")
    ] = None,
    retention: Annotated[str | None, typer.Option(help="e.g. 730d")] = None,
    digest_comments: Annotated[
        bool | None, typer.Option("--digest-comments/--no-digest-comments")
    ] = None,
    name: Annotated[str | None, typer.Option(help="the practice's name")] = None,
    safety_contact: Annotated[
        str | None,
        typer.Option(help="THERAPIST_ID alerted when a client's own therapist can't be; none"),
    ] = None,
    alert_escalation: Annotated[
        str | None,
        typer.Option(
            help="e.g. 2h: an urgent alert nobody acknowledged then goes to the safety contact"
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set practice defaults."""
    crisis = None
    if crisis_resources is not None:
        lang, sep, text = crisis_resources.partition("=")
        if not sep or not text.strip():
            fail("--crisis-resources takes LANG=TEXT")
        crisis = (lang.strip(), text.strip())
    data = with_runtime(
        lambda rt: admin.practice_set(
            rt,
            cadence=cadence,
            quiet_hours=quiet_hours,
            digest_lead=digest_lead,
            nudge_after=nudge_after,
            expire_after=expire_after,
            language=language,
            instrument=instrument,
            outcomes=outcome,
            safety_item=safety_item,
            crisis_resources=crisis,
            retention=retention,
            digest_comments=digest_comments,
            name=name,
            safety_contact=safety_contact,
            alert_escalation=alert_escalation,
        )
    )
    show(data, as_json)


@practice_app.command("show")
def practice_show(as_json: JsonOpt = False) -> None:
    """Show practice defaults."""
    show(with_runtime(admin.practice_show, "read"), as_json)


# --- therapists -------------------------------------------------------------------------------


@therapist_app.command("add")
def therapist_add(
    name: Annotated[str, typer.Option(help="the therapist's name (kept encrypted)")],
    timezone: Annotated[str, typer.Option(help="IANA zone, e.g. Europe/Berlin")] = "UTC",
    as_json: JsonOpt = False,
) -> None:
    """Add a therapist; prints the id and an invite link to open in Telegram."""
    data = with_runtime(lambda rt: admin.add_therapist(rt, name, timezone))
    show_added(data, as_json, lambda d: f"therapist {d['id']} added")


@therapist_app.command("move")
def therapist_move(
    therapist_id: Annotated[int, typer.Argument(help="the therapist's id")],
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Move a therapist to another Telegram account: the old one is disconnected now (messages
    still waiting for it are cancelled) and a link for the new one is printed. Audited."""
    move_account("therapist", therapist_id, yes, as_json, admin.move_therapist_account)


def move_account(
    who: str,
    ident: int,
    yes: bool,
    as_json: bool,
    move: Callable[[Runtime, int], Awaitable[dict[str, Any]]],
) -> None:
    """`client move` and `therapist move`: asked first, then the new account's link."""
    confirm(yes, f"Disconnect {who} {ident}'s current Telegram account?")
    moved = with_runtime(lambda rt: move(rt, ident))
    show(
        moved,
        as_json,
        lambda d: (
            f"{who} {ident}: the old Telegram account is disconnected "
            f"({d['cancelled_messages']} unsent message(s) cancelled)\n"
            f"invite link for the new account: {d['invite_link']}\nexpires: {d['expires_at']}"
        ),
    )


def confirm(yes: bool, question: str) -> None:
    """Go on with `--yes` or when the operator says yes; otherwise stop with exit code 1."""
    if not yes and not typer.confirm(question):
        raise typer.Exit(1)


@therapist_app.command("set")
def therapist_set(
    therapist_id: Annotated[int, typer.Argument(help="the therapist's id")],
    role: Annotated[str, typer.Option(help="therapist, supervisor or admin")],
    supervises: Annotated[
        str | None, typer.Option(help="supervisor only: therapist ids, comma-separated")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """A therapist's role in the practice console; their console sessions end (sign in again)."""
    from app.console import set_role

    ids: list[int] | None = None
    if supervises is not None:
        parts = [p.strip() for p in supervises.split(",") if p.strip()]
        if not all(is_number(p) for p in parts):
            fail("--supervises takes therapist ids separated by commas, e.g. 2,3")
        ids = [int(p) for p in parts]
    show(with_runtime(lambda rt: set_role(rt, therapist_id, role, ids)), as_json)


@therapist_app.command("list")
def therapist_list(as_json: JsonOpt = False) -> None:
    """List therapists."""
    show(with_runtime(admin.list_therapists, "read"), as_json)


# --- clients ----------------------------------------------------------------------------------


@client_app.command("add")
def client_add(
    therapist: Annotated[int, typer.Option(help="the therapist's id")],
    name: Annotated[str, typer.Option(help="the client's name (kept encrypted)")],
    timezone: Annotated[str | None, typer.Option(help="IANA zone; else asked in Telegram")] = None,
    cadence: Annotated[str | None, typer.Option(help="overrides the practice cadence")] = None,
    language: Annotated[str | None, typer.Option(help="en, es or ru")] = None,
    alias: Annotated[str | None, typer.Option(help="the therapist's name for them")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a client; prints the id and an invite link to send them."""
    data = with_runtime(
        lambda rt: admin.add_client(
            rt, therapist, name, timezone=timezone, cadence=cadence, language=language, alias=alias
        )
    )
    show_added(
        data,
        as_json,
        lambda d: f"client {d['id']} added as {d['alias']} (calendar code #{d['code']})",
    )


@client_app.command("list")
def client_list(
    therapist: Annotated[int | None, typer.Option(help="only this therapist's clients")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List clients."""
    show(with_runtime(lambda rt: admin.list_clients(rt, therapist), "read"), as_json)


@client_app.command("move")
def client_move(
    client_id: Annotated[int, typer.Argument(help="the client's id")],
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Move a client to another Telegram account: the old one is disconnected now (messages
    still waiting for it are cancelled; data and history are kept) and a link for the new one
    is printed. The new account goes through onboarding and consent again. Audited."""
    move_account("client", client_id, yes, as_json, admin.move_client_account)


@client_app.command("erase")
def client_erase(
    client_id: Annotated[int, typer.Argument(help="the client's id")],
    yes: YesOpt = False,
) -> None:
    """Erase a client's data for good."""
    confirm(yes, f"Erase everything stored about client {client_id}?")
    if not with_runtime(lambda rt: admin.erase_client(rt, client_id)):
        fail(f"no client with id {client_id}")
    typer.echo(f"client {client_id} erased")


# --- invites and sessions ---------------------------------------------------------------------


@commands.command("invite")
def invite(
    client: Annotated[int | None, typer.Option(help="a client's id")] = None,
    therapist: Annotated[int | None, typer.Option(help="a therapist's id")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A fresh single-use invite link for a client or a therapist; older unused links stop
    working. Refused for someone who has joined: `rapport client move` / `therapist move`."""
    if (client is None) == (therapist is None):
        fail("give exactly one of --client or --therapist")
    data = with_runtime(lambda rt: admin.new_invite(rt, client_id=client, therapist_id=therapist))
    show(data, as_json, lambda d: f"invite link: {d['invite_link']}\nexpires: {d['expires_at']}")


def parse_when(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        fail(f"--at: {text!r} is not an ISO date-time such as 2026-03-02T15:00:00+01:00")
        raise


@session_app.command("add")
def session_add(
    client: Annotated[int, typer.Option(help="the client's id")],
    at: Annotated[str, typer.Option(help="ISO date-time with offset")],
    minutes: Annotated[int, typer.Option(min=5, max=600)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Schedule a session; the digest goes out before it."""
    when = parse_when(at)
    data = with_runtime(lambda rt: admin.add_session(rt, client, when, minutes))
    show(data, as_json, lambda d: f"session {d['id']} at {d['starts_at']}, digest {d['digest_at']}")


@session_app.command("list")
def session_list(
    client: Annotated[int | None, typer.Option(help="only this client's sessions")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List sessions."""
    show(with_runtime(lambda rt: admin.list_sessions(rt, client), "read"), as_json)


def import_text(report: dict[str, Any]) -> str:
    counts = ", ".join(
        f"{report[k]} {k}" for k in ("created", "moved", "cancelled", "restored", "unchanged")
    )
    lines = [f"sessions: {counts}" + ("  (dry run: nothing written)" if report["dry_run"] else "")]
    if report.get("merged"):
        lines.append(
            f"{report['merged']} event(s) at the time of a session the client already has: "
            "kept as that one session (no second digest)"
        )
    for change in report["changes"]:
        session = f"session {change['session']}" if change["session"] else "new session"
        lines.append(
            f"  {change['action']}: {session}, client {change['client']}, {change['starts_at']}"
        )
    if report["unmatched"]:
        lines.append(
            f"unmatched events ({len(report['unmatched'])}), not imported; "
            "put the client's code (#RC-XXXX) in the event:"
        )
        lines += [f"  {u['start']}  {u['reason']}  uid {u['uid']}" for u in report["unmatched"]]
    if report.get("problems"):
        lines.append(f"could not be read ({len(report['problems'])}), fix them in the calendar:")
        lines += [f"  {problem}" for problem in report["problems"]]
    if report["missing"]:
        lines.append("no longer in the calendar (kept; `rapport session cancel ID` if deleted):")
        lines += [
            f"  session {m['session']}, client {m['client']}, {m['starts_at']}"
            for m in report["missing"]
        ]
    return "\n".join(lines)


@session_app.command("import")
def session_import(
    file: Annotated[Path, typer.Argument(help="the calendar exported as .ics")],
    therapist: Annotated[int, typer.Option(help="the therapist whose calendar it is")],
    days: Annotated[int, typer.Option(min=1, max=730, help="look this many days ahead")] = 90,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report, write nothing")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Match calendar events to clients by their code (#RC-XXXX) and store the sessions.

    Importing again is safe: moved events move their sessions, cancelled ones cancel them.
    """
    from app.calendar_sync import import_ahead
    from app.ics_import import MAX_ICS_BYTES

    try:
        if file.stat().st_size > MAX_ICS_BYTES:  # refused before it is read into memory
            fail(f"{file}: larger than 10 MiB, not a calendar export this can read")
        ics = file.read_bytes()
    except OSError as exc:
        fail(f"{file}: {exc.strerror or exc}")
        raise

    def work(rt: Runtime) -> Awaitable[dict[str, Any]]:
        return import_ahead(rt, ics, therapist_id=therapist, days=days, dry_run=dry_run)

    show(with_runtime(work), as_json, import_text)


def calendar_note(d: dict[str, Any]) -> str:
    if not d["from_calendar"]:
        return ""
    return (
        "\nnote: this session came from a calendar; change it there too, or the next import "
        "puts it back"
    )


@session_app.command("cancel")
def session_cancel(
    session_id: Annotated[int, typer.Argument(help="the session's id")],
    as_json: JsonOpt = False,
) -> None:
    """Cancel a session (no digest for it; the client's next check-in is planned again)."""
    from app.calendar_sync import cancel_session

    data = with_runtime(lambda rt: cancel_session(rt, session_id))
    show(data, as_json, lambda d: f"session {d['id']} cancelled" + calendar_note(d))


@session_app.command("move")
def session_move(
    session_id: Annotated[int, typer.Argument(help="the session's id")],
    at: Annotated[str, typer.Option(help="new ISO date-time with offset")],
    minutes: Annotated[int | None, typer.Option(min=5, max=600, help="new length")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a session; its digest and the client's next check-in follow."""
    from app.calendar_sync import move_session

    when = parse_when(at)
    data = with_runtime(lambda rt: move_session(rt, session_id, when, minutes))
    show(
        data,
        as_json,
        lambda d: (
            f"session {d['id']} moved to {d['starts_at']}, digest {d['digest_at']}"
            + calendar_note(d)
        ),
    )


# --- running ----------------------------------------------------------------------------------


@client_app.command("set")
def client_set(
    client_id: Annotated[int, typer.Argument(help="the client's id")],
    cadence: Annotated[str | None, typer.Option(help="a rule, or 'default'")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone")] = None,
    language: Annotated[str | None, typer.Option(help="en, es or ru")] = None,
    quiet_hours: Annotated[str | None, typer.Option(help="e.g. 22:00-08:00, or 'default'")] = None,
    outcome: Annotated[
        list[str] | None,
        typer.Option(help="NAME:INTERVAL (e.g. phq-9:14d), off, or 'default'"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Override the practice defaults for one client; their next check-in is re-planned."""
    data = with_runtime(
        lambda rt: admin.client_set(
            rt,
            client_id,
            cadence=cadence,
            timezone=timezone,
            language=language,
            quiet_hours=quiet_hours,
            outcomes=outcome,
        )
    )
    show(data, as_json)


# --- reading client data (audited) -----------------------------------------------------------


@commands.command("digest")
def digest(
    client: Annotated[int, typer.Option(help="the client's id")],
    format: Annotated[str, typer.Option(help="text, json or png")] = "text",
    out: Annotated[Path | None, typer.Option(help="file for --format png")] = None,
) -> None:
    """The digest for a client as it would be sent now."""
    from app.reports import digest_now

    if format not in ("text", "json", "png"):
        fail("--format must be text, json or png")
    if format == "png" and out is None:
        fail("--format png needs --out FILE.png")
    result = with_runtime(lambda rt: digest_now(rt, client), "read")
    if format == "json":
        typer.echo(json_text(result.as_json))
    elif format == "png":
        assert out is not None
        if result.png is None:
            fail("no chart yet: this client has no check-ins")
        out.write_bytes(result.png or b"")
        typer.echo(f"chart written to {out}")
    else:
        typer.echo("\n\n".join(result.chunks))


@commands.command("export")
def export(
    format: Annotated[str, typer.Option(help="csv or json")],
    client: Annotated[int | None, typer.Option(help="one client's id; default all")] = None,
    out: Annotated[Path | None, typer.Option(help="file to write; default standard output")] = None,
) -> None:
    """Everything stored about a client (or all), readable. Decrypts, so it is audited."""
    from app.export import export as run_export
    from app.export import to_csv

    if format not in ("csv", "json"):
        fail("--format must be csv or json")
    records = with_runtime(lambda rt: run_export(rt, client), "read")
    text = json_text(records) if format == "json" else to_csv(records)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{len(records)} client(s) written to {out}")


@commands.command("audit")
def audit(
    client: Annotated[int | None, typer.Option(help="only this client's entries")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Who read which client's data, and when."""
    show(with_runtime(lambda rt: admin.audit_log(rt, client), "read"), as_json)


@commands.command("backtest")
def backtest(
    file: Annotated[Path | None, typer.Argument(help="JSON Lines of client histories")] = None,
    config: Annotated[Path | None, typer.Option(help="thresholds (.toml or .json)")] = None,
    summary_only: Annotated[bool, typer.Option("--summary", help="print only the summary")] = False,
    from_db: Annotated[
        bool, typer.Option("--from-db", help="score this practice's own history instead")
    ] = False,
    min_weeks: Annotated[
        int, typer.Option(min=1, help="with --from-db: weeks followed to count as a stayer")
    ] = 8,
    lapse_weeks: Annotated[
        int, typer.Option(min=1, help="with --from-db: ...and active within this many weeks")
    ] = 4,
    as_json: JsonOpt = False,
) -> None:
    """Signals over past histories; with labels, precision/recall/F1 against simple rules.

    With --from-db, the practice's own clients, labelled by observed endings, and a plain report
    with suggested thresholds."""
    from insights.backtest import run_backtest
    from insights.thresholds import Thresholds

    if from_db == (file is not None):
        fail("give either a FILE or --from-db")
    try:
        thresholds = Thresholds.from_file(config) if config else Thresholds()
    except (OSError, ValueError) as exc:
        fail(str(exc))
        raise  # unreachable
    if from_db:
        _backtest_from_db(thresholds, min_weeks, lapse_weeks, as_json)
        return
    assert file is not None
    try:
        with file.open(encoding="utf-8") as lines:
            for obj in run_backtest(lines, thresholds):
                if summary_only and "summary" not in obj:
                    continue
                typer.echo(json.dumps(obj, ensure_ascii=False))
    except (OSError, ValueError) as exc:
        fail(str(exc))


def _backtest_from_db(thresholds: Any, min_weeks: int, lapse_weeks: int, as_json: bool) -> None:
    from app.practice_backtest import practice_backtest
    from insights.practice import Labelling, report

    labelling = Labelling(min_weeks, lapse_weeks)
    result = with_runtime(lambda rt: practice_backtest(rt, thresholds, labelling=labelling), "read")
    if as_json:
        data = {k: v for k, v in vars(result).items() if k != "lines"}
        typer.echo(json_text(data))
    else:
        typer.echo("\n".join(report(result)))


# --- keys and health --------------------------------------------------------------------------


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored text with the first key in RAPPORT_ENCRYPTION_KEY. Refused while
    a running bot does not yet encrypt with that key: see the README's key rotation steps."""
    done = with_runtime(admin.rotate_keys, None)
    retired = ", ".join(done["retired"])
    then = (
        f"; key id(s) {retired} no longer hold data here: remove them from "
        "RAPPORT_ENCRYPTION_KEY and restart the bot"
        if retired
        else ""
    )
    typer.echo(f"{done['count']} values re-encrypted with key {done['key']}{then}")


def key_status_text(d: dict[str, Any]) -> str:
    configured = ", ".join(
        f"{k} (encrypts)" if n == 0 else k for n, k in enumerate(d["configured"])
    )
    lines = [
        f"configured keys: {configured}",
        f"data held under: {', '.join(d['held']) or '(nothing yet)'}",
    ]
    if d["unreadable"]:
        lines.append(f"NOT readable with these keys: {', '.join(d['unreadable'])}")
    for b in d["bots"]:
        state = "running" if b["alive"] else "not running"
        lines.append(
            f"bot {b['id']}: keys {','.join(b['keys'])}, seen {b['seen_seconds_ago']} s ago "
            f"({state})"
        )
    if not d["bots"]:
        lines.append("no bot has registered on this database")
    return "\n".join(lines)


@keys_app.command("show")
def keys_show(as_json: JsonOpt = False) -> None:
    """Key ids (never keys): configured here, holding data in the database, and each bot's."""
    show(with_runtime(admin.key_status, None), as_json, key_status_text)


@commands.command("health")
def health(
    max_age: Annotated[float, typer.Option(help="seconds since the last heartbeat")] = 120.0,
) -> None:
    """Exit 0 when the database answers and the bot's heartbeat is recent (Docker HEALTHCHECK)."""
    from app.health import check, set_aside, warnings

    problem = with_runtime(lambda rt: check(rt, max_age), None)
    if problem:
        fail(problem)
    held = set_aside(settings().database_url, max_age)
    note = f"; {held} item(s) set aside after failures, named in the bot's log" if held else ""
    typer.echo(f"ok{note}")
    for line in with_runtime(warnings, "read"):  # healthy all the same: settings to fix
        typer.echo(line)


@commands.command("run")
def run(
    webhook_url: Annotated[str | None, typer.Option(help="public HTTPS URL: webhook mode")] = None,
    listen: Annotated[str, typer.Option(help="HOST:PORT for webhook mode")] = "0.0.0.0:8443",
    polling: Annotated[
        bool,
        typer.Option(
            "--polling/--no-polling",
            help="--no-polling: a replica that only runs the heartbeat and the outbox sender "
            "(one token allows one poller; another replica or the webhook receives updates)",
        ),
    ] = True,
) -> None:
    """Run the bot (long polling by default)."""
    conf = settings()  # before the heavy imports: a bad setting is reported at once
    from bot.main import run_bot

    with setup_errors(), contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_bot(conf, webhook_url=webhook_url, listen=listen, polling=polling))


@web_app.callback()
def web(
    ctx: typer.Context,
    listen: Annotated[str, typer.Option(help="HOST:PORT to serve the console on")] = (
        "127.0.0.1:8080"
    ),
) -> None:
    """Serve the practice console alone (with a polling bot); `rapport web link` signs in."""
    if ctx.invoked_subcommand is not None:
        return
    conf = settings()
    from web.serve import serve_console

    with setup_errors(), contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_console(conf, listen))


@web_app.command("link")
def web_link(
    therapist: Annotated[int, typer.Option(help="the therapist (or admin) who signs in")],
) -> None:
    """A one-time sign-in link to the console (valid 10 minutes, one browser)."""
    from app.console import new_link_token

    token = with_runtime(lambda rt: new_link_token(rt, therapist), "read")
    typer.echo(f"{settings().console_url}/signin/{token}")


@contextlib.contextmanager
def from_checkout() -> Iterator[None]:
    """devtools/ (the sandbox, the demo) is left out of the wheel and the image: where it is
    missing, say so in one line. Any other missing module is a real fault and goes on up."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "devtools":
            raise
        fail(
            "the sandbox and the demo live in devtools/, which is not installed with Rapport: "
            "run them from a checkout of the source (make sandbox, make demo)",
            2,
        )


@commands.command("sandbox")
def sandbox(
    port: Annotated[int, typer.Option(help="port to listen on")] = 8081,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
) -> None:
    """Run the local Bot API stand-in alone (for trying Rapport without Telegram)."""
    with from_checkout():
        from devtools.sandbox.standalone import main as sandbox_main

    sandbox_main(["--host", host, "--port", str(port)])


@commands.command("demo")
def demo(
    weeks: Annotated[int, typer.Option(min=1, max=26, help="simulated weeks")] = 6,
    out: Annotated[Path, typer.Option(help="folder for digest pictures and the summary")] = Path(
        "demo-out"
    ),
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="no live transcript")] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="then keep the demo practice's console running")
    ] = False,
    listen: Annotated[str, typer.Option(help="HOST:PORT for --serve")] = "127.0.0.1:8080",
) -> None:
    """The whole story against the sandbox: a practice's weeks in about a minute."""
    with from_checkout():
        from devtools.demo import run_demo

    code = asyncio.run(
        run_demo(
            weeks=weeks, out=out, speed=speed or None, quiet=quiet, serve=listen if serve else None
        )
    )
    raise typer.Exit(code)


def main(argv: list[str] | None = None) -> None:
    commands(args=argv if argv is not None else sys.argv[1:], prog_name="rapport")


if __name__ == "__main__":
    main()
