"""`rapport demo`: a practice's weeks in about a minute, in one process and nothing to configure.

The sandbox Bot API, the real bot (PTB, heartbeat, outbox sender) and a time-lapse clock run
together on SQLite in a temporary folder, with a throw-away encryption key and Rapport's sending
limits off (the time-lapse would otherwise turn Telegram's one message a second per chat into
hours). One therapist joins through their invite; five simulated clients join through theirs and
live their stories by tapping and typing in the sandbox. At the end the story is checked against
what the therapist actually received, and the exit code says whether it held.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console

from app import admin
from app.config import ConfigError, load_settings
from app.runtime import Runtime
from bot.service import BotService
from devtools.demo.checks import verify
from devtools.demo.clock import HeldTimelapse
from devtools.demo.output import print_digests, print_summary
from devtools.demo.people import ClientAgent
from devtools.demo.report import ClientFacts, collect
from devtools.demo.serve import serve_demo_console
from devtools.demo.story import CAST, THERAPIST_NAME, THERAPIST_ZONE
from devtools.demo.summary import LogCounter, counted_logs, summary_json
from devtools.demo.therapist import TherapistView
from devtools.demo.time import Pacer, Watch, expected_stops, live
from devtools.demo.transcript import Transcript
from devtools.sandbox import DEFAULT_TOKEN, Sandbox
from storage.crypto import Cipher
from storage.db import upgrade_async

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin
AFTER_LAST_MONDAY = timedelta(hours=5, minutes=30)  # past the last Monday's digests
TARGET_WALL_SECONDS = 48.0  # the whole run, when the pace is left to the demo
CLOSING_SECONDS = 2.0
HEARTBEAT_WALL_SECONDS = 1.0  # the bot's own heartbeat; due moments are also met exactly
SESSION_MINUTES = 50
SEED = 2026
PRACTICE = {
    "cadence": "weekdays tue,fri at 18:00",
    "expire_after": "3d",  # a check-in closes when the next one opens
    "crisis_resources": (
        "en",
        "TelefonSeelsorge 0800 111 0 111 (free, day and night) · emergency 112",
    ),
}


def simulated_span(weeks: int) -> timedelta:
    return timedelta(weeks=weeks) + AFTER_LAST_MONDAY


def default_speed(weeks: int) -> float:
    """The starting pace (then adjusted): the story in about half of the wall-time target."""
    return round(simulated_span(weeks).total_seconds() / (TARGET_WALL_SECONDS / 2), -2)


@dataclass
class Stage:
    """Everything running for the demo, for an orderly shutdown."""

    sandbox: Sandbox
    rt: Runtime
    service: BotService
    watch: Watch
    tasks: list[asyncio.Task[None]]


async def run_demo(
    weeks: int = 6,
    out: Path = Path("demo-out"),
    speed: float | None = None,
    quiet: bool = False,
    serve: str | None = None,
) -> int:
    """Run the whole story; 0 when every check holds, 1 otherwise. With `serve` (HOST:PORT),
    the practice's console stays up afterwards until Ctrl-C (`devtools.demo.serve`)."""
    if weeks < 1:
        raise ValueError("the demo needs at least one week")
    console = Console(highlight=False)
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    clock = HeldTimelapse(START, speed or default_speed(weeks), held=True)
    transcript = Transcript(console, ZoneInfo(THERAPIST_ZONE), quiet=quiet)
    wall_start = time.monotonic()
    kept: list[Stage] = []
    with tempfile.TemporaryDirectory(prefix="rapport-demo-") as folder, counted_logs() as logs:
        try:
            facts, therapist = await _story(
                Path(folder), clock, transcript, weeks, out, speed, kept if serve else None
            )
        except (ConfigError, TimeoutError, OSError, ValueError) as exc:
            transcript.stop_progress()
            console.print(f"[red]the demo could not finish: {type(exc).__name__}: {exc}[/red]")
            return 1
        try:
            return await _report(
                console,
                clock,
                facts,
                therapist,
                logs,
                weeks,
                out,
                speed,
                quiet,
                wall_start,
                kept,
                serve,
            )
        finally:
            for stage in kept:
                await _shut_down(stage)


async def _report(
    console: Console,
    clock: HeldTimelapse,
    facts: list[ClientFacts],
    therapist: TherapistView,
    logs: LogCounter,
    weeks: int,
    out: Path,
    speed: float | None,
    quiet: bool,
    wall_start: float,
    kept: list[Stage],
    serve: str | None,
) -> int:
    """The checks, the summary and the digests; then the console, if it is to stay up."""
    checks = [*verify(facts, therapist.alerts), logs.check()]
    wall = time.monotonic() - wall_start
    summary = summary_json(
        facts=facts,
        therapist=therapist,
        checks=checks,
        weeks=weeks,
        span=(START, START + simulated_span(weeks), THERAPIST_ZONE),
        fixed_speed=speed,
        wall=wall,
        clock=clock,
        logs=logs,
    )
    text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    await asyncio.to_thread((out / "summary.json").write_text, text, encoding="utf-8")
    if not quiet:
        print_digests(console, facts)
    print_summary(console, facts, checks, summary, out)
    for stage in kept:
        assert serve is not None
        clock.acquire()  # time stands still while the console is looked at
        with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
            await serve_demo_console(stage.rt, serve, console)
    return 0 if summary["ok"] else 1


async def _story(
    folder: Path,
    clock: HeldTimelapse,
    transcript: Transcript,
    weeks: int,
    out: Path,
    fixed_speed: float | None,
    keep: list[Stage] | None = None,
) -> tuple[list[ClientFacts], TherapistView]:
    """Everything between start and shutdown: joining, the weeks, and what came of them. With
    `keep`, the stage is left running (appended to it) for the caller to shut down."""
    wall_start = time.monotonic()
    stage = await _start(folder, clock)
    try:
        pace = (
            f"time-lapse paced to finish in about {TARGET_WALL_SECONDS:.0f} s"
            if fixed_speed is None
            else f"time-lapse ×{fixed_speed:,.0f}"
        )
        agents, therapist = await _set_up(stage, clock, transcript, weeks, out, pace)
        end = START + simulated_span(weeks)
        pacer = None
        if fixed_speed is None:
            budget = TARGET_WALL_SECONDS - (time.monotonic() - wall_start) - CLOSING_SECONDS
            stops = expected_stops(weeks, len(agents))
            pacer = Pacer(clock, START, end, max(budget, 5.0), stops)
        transcript.start_progress(START, end, weeks)
        await live(stage.rt, stage.watch, clock, transcript, end, pacer)
        await stage.watch.drain(stage.rt)
        await asyncio.sleep(0.2)  # the last deliveries reach their readers
        transcript.flush()
        transcript.stop_progress()
        await _stop_tasks(stage.tasks)
        result = await collect(stage.rt, agents, therapist), therapist
        if keep is not None:
            keep.append(stage)
        return result
    finally:
        transcript.stop_progress()
        await _stop_tasks(stage.tasks)
        if keep is None or stage not in keep:
            await _shut_down(stage)


# --- stages -----------------------------------------------------------------------------------


async def _start(folder: Path, clock: HeldTimelapse) -> Stage:
    url = f"sqlite+aiosqlite:///{folder / 'rapport.db'}"
    await upgrade_async(url)
    key = Cipher.generate_key()  # throw-away: lives only as long as this run
    sandbox = Sandbox(clock=clock)
    await sandbox.start()
    sandbox.add_bot(DEFAULT_TOKEN, username="rapport_demo_bot", first_name="Rapport")
    settings = load_settings(
        database_url=url,
        telegram_token=DEFAULT_TOKEN,
        telegram_api_url=sandbox.api_url,
        encryption_key=key,
        clock=None,
        send_rate=0,
        chat_send_rate=0,
    )
    rt = Runtime.create(settings, clock=clock, cipher=Cipher(key))
    service = BotService(rt, heartbeat_interval=HEARTBEAT_WALL_SECONDS)
    try:
        await service.start()
    except BaseException:
        await rt.close()
        await sandbox.stop()
        raise
    clock.watch(lambda held: _pause_heartbeat(service, held))
    _pause_heartbeat(service, clock.is_held)
    return Stage(sandbox, rt, service, Watch(url), [])


def _pause_heartbeat(service: BotService, held: bool) -> None:
    """While time stands still nothing can fall due: spare the CPU for the taps."""
    job_queue = service.app.job_queue
    if job_queue is not None:
        for job in job_queue.get_jobs_by_name("heartbeat"):
            job.enabled = not held


async def _set_up(
    stage: Stage, clock: HeldTimelapse, transcript: Transcript, weeks: int, out: Path, pace: str
) -> tuple[list[ClientAgent], TherapistView]:
    """The practice, the therapist and the clients, joined by their invites (clock held)."""
    rt, sandbox = stage.rt, stage.sandbox
    now = clock.now()
    transcript.note(
        f"Rapport demo · {len(CAST)} clients, {weeks} simulated weeks from "
        f"{transcript.stamp(now)} ({THERAPIST_ZONE}) · {pace}",
        style="bold",
    )
    if weeks < 3:
        transcript.note("the stories need three weeks to unfold: expect some checks to fail", "red")
    transcript.note("demo mode: a throw-away encryption key, generated for this run", "yellow")
    transcript.note(
        "demo mode: Rapport's sending limits set to 0 (no limit) for the time-lapse", "yellow"
    )
    transcript.note(f"sandbox Bot API on {sandbox.base_url}; SQLite in a temporary folder", "dim")
    await admin.practice_set(rt, **PRACTICE)
    transcript.event(now, f"practice: check-ins {PRACTICE['cadence']}, quiet hours 21:00-09:00")

    therapist_data = await admin.add_therapist(rt, THERAPIST_NAME, THERAPIST_ZONE)
    therapist = TherapistView(stage.watch, sandbox, transcript, out, THERAPIST_NAME.split()[-2])
    await therapist.join(_token(therapist_data["invite_link"]))
    transcript.event(now, "the therapist joined through their invite link", style="bold")
    stage.tasks.append(asyncio.create_task(therapist.run(), name="demo-therapist"))

    agents: list[ClientAgent] = []
    for index, persona in enumerate(CAST):
        data = await admin.add_client(
            rt, therapist_data["id"], persona.name, timezone=persona.zone, alias=persona.alias
        )
        agent = ClientAgent(
            persona, data["id"], sandbox, clock, transcript, 2 * weeks, SEED + index
        )
        await agent.join(_token(data["invite_link"]))
        how = "picked London" if persona.zone is None else "confirmed Berlin"
        transcript.event(
            clock.now(),
            f"{persona.alias} joined by invite: language, consent, time zone ({how}) by taps",
        )
        agents.append(agent)
    await _book_sessions(rt, agents, weeks, transcript)
    for agent in agents:
        stage.tasks.append(asyncio.create_task(agent.run(), name=f"demo-{agent.alias}"))
    return agents, therapist


async def _book_sessions(
    rt: Runtime, agents: list[ClientAgent], weeks: int, transcript: Transcript
) -> None:
    zone = ZoneInfo(THERAPIST_ZONE)
    first_monday = START.astimezone(zone).date() + timedelta(weeks=1)
    for agent in agents:
        for week in range(weeks):
            day = first_monday + timedelta(weeks=week)
            at = datetime(day.year, day.month, day.day, agent.persona.session_hour, tzinfo=zone)
            await admin.add_session(rt, agent.client_id, at, SESSION_MINUTES)
    hours = ", ".join(f"{a.alias} {a.persona.session_hour:02d}:00" for a in agents)
    transcript.event(
        rt.clock.now(), f"weekly sessions booked, Mondays from {first_monday:%d %b}: {hours}"
    )


async def _stop_tasks(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    tasks.clear()


async def _shut_down(stage: Stage) -> None:
    await stage.service.stop()
    await stage.watch.close()
    await stage.rt.close()
    await stage.sandbox.stop()


def _token(link: str) -> str:
    return link.rsplit("start=", 1)[1]
