"""The answer path: clients answering the open check-in's question (a tap on a 0–10 button, or the
number typed), against a bare PTB echo bot on the same sandbox in the same run.

Run: .venv/bin/python bench/answer_bench.py [--quick] [--users N]

N clients with an open check-in are built once per backend (`bench.population`, the check-ins
opened by the heartbeat's own code, the first questions waiting in the outbox) and the database
copied for each run: one run taps, one types. Each run starts `rapport run` on its copy, lets it
send the first questions, then every client answers the question in front of them:

* bursts: all clients at once, one answer each, a question per round; the echo bot's burst of as
  many texts runs just before each (the two bots take turns, as in `pipeline_bench.py`) and the
  ratio is the median round's throughput over the echo bot's;
* paced: the next question at 100 answers per second, for the latency;
* the rest of the check-in (the yes/no question, the comment skipped or typed, the thanks), to
  count the Bot API calls a whole check-in costs a client, from the opening to the thanks.

Figures per answer: throughput, bot CPU, Bot API calls by method (callback answers included),
and the latency from the answer to the next question arriving in the sandbox (a message or an
edit carrying the next question's buttons). The limiter is lifted (send_rate=0,
chat_send_rate=0). SQLite, and PostgreSQL when RAPPORT_BENCH_POSTGRES_URL (or
RAPPORT_TEST_POSTGRES_URL) is set; RAPPORT_BENCH_BACKENDS picks. On a shared machine wall-clock
figures move with the neighbours' load: rely on the ratios within one run.

Targets: a tap at ≥ 0.5× the echo bot's throughput; ≤ 2 Bot API calls per answer and p99 under
100 ms at 100 answers/s, tapped or typed. A typed answer's throughput is reported without a
target (README, "Performance").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from app import heartbeat
from app.clock import ManualClock
from bench.common import (
    POSTGRES_ENVS,
    START,
    backends,
    bot_environment,
    database,
    make_runtime,
    ms,
    percentile,
    postgres_base_url,
    summary,
    timelapse_clock,
)
from bench.pipeline_bench import ECHO_TOKEN, Load, Phase, settle_sandbox
from bench.population import populate
from bench.processes import BotProcess
from bench.traffic import cpu_seconds, on_every_call
from devtools.sandbox import DEFAULT_TOKEN, ApiCall, Sandbox, SandboxBot, SandboxUser
from flows.i18n import t
from flows.keyboards import CHECKIN
from storage.db import create_engine
from storage.models import Checkin, OutboxMessage

CONCURRENCY = 32
PACED_RATE = 100.0
TARGET_RATIO = 0.5
TARGET_P99 = 0.100
TARGET_CALLS = 2.0
BURSTS = 3  # questions answered in bursts; the 4th is answered paced, the 5th with the rest
ECHO_WARM_UP = 10
# What each client answers: the scale questions, then "no" to the yes/no one, then the comment.
SCALE_CHOICE, NO_CHOICE, SKIP_CHOICE = "7", "0", "s"
# Calls a bot makes for itself (start-up, polling), not for a client.
NOT_PER_CHAT = frozenset({"getUpdates", "getMe", "deleteWebhook", "setWebhook", "setMyCommands"})
TYPED = {SCALE_CHOICE: "7", NO_CHOICE: "no", SKIP_CHOICE: "all fine, thank you"}


@dataclass
class Calls:
    """Every Bot API call of one bot the sandbox answered, with the time it was recorded; and
    per chat, when a message or edit carrying check-in buttons (a question) arrived."""

    bot_username: str
    methods: Counter[str] = field(default_factory=Counter)
    questions: defaultdict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    thanks: dict[int, float] = field(default_factory=dict)
    thanks_text: str = ""

    def note(self, call: ApiCall, at: float) -> None:
        if call.bot_username != self.bot_username or call.method in NOT_PER_CHAT:
            return
        self.methods[call.method] += 1
        if not call.ok or call.method not in ("sendMessage", "editMessageText"):
            return
        chat_id = int(str(call.params.get("chat_id")))
        if _has_question(call.params.get("reply_markup")):
            self.questions[chat_id].append(at)
        if self.thanks_text and self.thanks_text in str(call.params.get("text", "")):
            self.thanks[chat_id] = at

    def total(self) -> int:
        return sum(self.methods.values())


def _has_question(markup: Any) -> bool:
    if isinstance(markup, str):
        return f'"{CHECKIN}:' in markup
    if isinstance(markup, dict):
        rows = markup.get("inline_keyboard") or []
        return any(
            str(b.get("callback_data", "")).startswith(f"{CHECKIN}:") for r in rows for b in r
        )
    return False


def watch_calls(sandbox: Sandbox, bot: SandboxBot) -> Calls:
    # The thanks up to the therapist's name: what every client's last message shows.
    thanks = t("en", "checkin.thanks", therapist="\x00").split("\x00")[0].strip()
    calls = Calls(bot.username or "", thanks_text=thanks)
    on_every_call(sandbox, calls.note)
    return calls


@dataclass
class Step:
    """One question answered by every client (or some, paced)."""

    label: str
    count: int
    answered: int
    wall: float
    latencies: list[float]
    cpu: float
    methods: Counter[str]

    @property
    def throughput(self) -> float:
        return self.answered / self.wall if self.wall > 0 else math.nan

    @property
    def calls(self) -> float:
        return sum(self.methods.values()) / self.count if self.count else math.nan

    def describe(self) -> str:
        cpu = self.cpu / self.answered * 1000 if self.answered else math.nan
        methods = ", ".join(f"{m} {n / self.count:.2f}" for m, n in sorted(self.methods.items()))
        lost = self.count - self.answered
        return (
            f"{self.answered}/{self.count} in {self.wall:.2f} s = {self.throughput:,.0f}/s; "
            f"p50 {ms(percentile(self.latencies, 50))} p99 {ms(percentile(self.latencies, 99))}; "
            f"CPU {cpu:.2f} ms; {self.calls:.2f} calls ({methods})"
            + (f"; {lost} UNANSWERED" if lost else "")
        )


class Clients:
    """The simulated clients of the bot under test, answering the question in front of them."""

    def __init__(self, sandbox: Sandbox, bot: SandboxBot, users: list[SandboxUser]) -> None:
        self.sandbox, self.bot = sandbox, bot
        self.users = [user.with_bot(bot) for user in users]
        self.calls = watch_calls(sandbox, bot)

    def live_question(self, user: SandboxUser) -> tuple[int, dict[str, str]] | None:
        """The newest bot message in the chat showing check-in buttons: its id, data by value."""
        conversation = self.sandbox.world.conversation(self.bot, self.sandbox.world.chats[user.id])
        for message_id in reversed(conversation.bot_message_ids):
            message = conversation.messages.get(message_id) or {}
            rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
            data = [str(b.get("callback_data", "")) for row in rows for b in row]
            if any(d.startswith(f"{CHECKIN}:") for d in data):
                return message_id, {d.rsplit(":", 1)[-1]: d for d in data}
        return None

    async def answer(self, user: SandboxUser, choice: str, typed: bool) -> None:
        if typed:
            await user.send(TYPED[choice])
            return
        live = self.live_question(user)
        if live is None or choice not in live[1]:
            raise RuntimeError(f"no live question with {choice!r} for user {user.id}")
        await user.tap(live[0], live[1][choice])

    async def step(
        self,
        label: str,
        choice: str,
        typed: bool,
        pid: int | None,
        *,
        rate: float | None = None,
        until: Callable[[int], bool] | None = None,
    ) -> Step:
        """Every client answers once (at `rate` per second, else all at once); waits for each
        chat's next question (or `until(chat_id)`), and measures."""
        calls = self.calls
        before = {u.chat_id: len(calls.questions[u.chat_id]) for u in self.users}
        done = until or (lambda chat_id: len(calls.questions[chat_id]) > before[chat_id])
        methods_before = Counter(calls.methods)
        sent: dict[int, float] = {}
        cpu_before = cpu_seconds(pid)
        loop = asyncio.get_running_loop()
        began = loop.time()
        for i, user in enumerate(self.users):
            if rate is not None and (delay := began + i / rate - loop.time()) > 0:
                await asyncio.sleep(delay)  # pacing the load, not waiting for a result
            sent[user.chat_id] = time.perf_counter()
            await self.answer(user, choice, typed)
        with contextlib.suppress(TimeoutError):
            await self.sandbox.wait_until(
                lambda: all(done(c) for c in sent), max(60.0, len(sent) / 10), what=label
            )
        await self.quiet()
        cpu = cpu_seconds(pid) - cpu_before
        arrived = {c: self._arrival(c, before[c], until is not None) for c in sent}
        latencies = [a - sent[c] for c, a in arrived.items() if a is not None]
        last = max((a for a in arrived.values() if a is not None), default=math.nan)
        return Step(
            label,
            len(sent),
            len(latencies),
            last - min(sent.values()),
            latencies,
            cpu,
            Counter(calls.methods) - methods_before,
        )

    def _arrival(self, chat_id: int, before: int, thanks: bool) -> float | None:
        if thanks:
            return self.calls.thanks.get(chat_id)
        times = self.calls.questions[chat_id]
        return times[before] if len(times) > before else None

    async def quiet(self, settle: float = 0.3) -> None:
        """Until the bot has made no call for `settle` seconds (the stragglers of a step, e.g.
        callback answers after the last question, belong to it)."""
        last = -1
        while (total := self.calls.total()) != last:
            last = total
            await asyncio.sleep(settle)  # waiting for silence, not for a result


@dataclass
class RunResult:
    label: str
    typed: bool = False
    bursts: list[Step] = field(default_factory=list)
    echo: list[Phase] = field(default_factory=list)
    paced: Step | None = None
    whole_calls: float = math.nan  # Bot API calls per client, opening to thanks
    whole_methods: Counter[str] = field(default_factory=Counter)
    error: str | None = None

    def ratios(self) -> list[float]:
        return [s.throughput / e.throughput for s, e in zip(self.bursts, self.echo, strict=False)]


async def build_template(url: str, users: list[SandboxUser]) -> None:
    """Clients due now, their check-ins opened with the heartbeat's own code: the first
    questions wait in the outbox for the bot to send."""
    rt = make_runtime(url, ManualClock(START))
    try:
        await populate(rt, len(users), now=START, due=len(users), chat_ids=[u.id for u in users])
        while (await heartbeat.run_pass(rt)).opened:
            pass
        async with rt.sessions() as s:
            opened = int(await s.scalar(select(func.count()).select_from(Checkin)) or 0)
        if opened != len(users):
            raise RuntimeError(f"opened {opened} check-ins for {len(users)} clients")
    finally:
        await rt.close()


@contextlib.asynccontextmanager
async def copied(url: str) -> AsyncIterator[str]:
    """A copy of the template database for one run, removed afterwards."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        source = Path(str(parsed.database))
        folder = Path(tempfile.mkdtemp(prefix="rapport-answer-"))
        target = folder / "run.db"
        shutil.copyfile(source, target)
        os.chmod(target, 0o600)
        try:
            yield parsed.set(database=str(target)).render_as_string(hide_password=False)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    base = postgres_base_url()
    assert base is not None
    name = f"rapport_answer_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"'))
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def outbox_pending(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            query = select(func.count()).select_from(OutboxMessage)
            return int(await conn.scalar(query.where(OutboxMessage.status == "pending")) or 0)
    finally:
        await engine.dispose()


async def one_run(
    url: str,
    api_url: str,
    clients: Clients,
    echo: Load,
    echo_pid: int | None,
    result: RunResult,
    typed: bool,
    profile: Path | None = None,
) -> None:
    env = bot_environment(url, api_url, send_rate=0, chat_send_rate=0, clock=timelapse_clock())
    process = BotProcess.rapport(env)
    if profile is not None:  # the whole process under cProfile, written when it stops
        process.argv[1:1] = ["-m", "cProfile", "-o", str(profile)]
    calls = clients.calls
    calls.methods.clear()
    await process.start()
    try:
        # The opening: every client gets the intro and the first question.
        try:
            await clients.sandbox.wait_until(
                lambda: all(calls.questions[u.chat_id] for u in clients.users),
                120.0,
                what="opening",
            )
        except TimeoutError:
            result.error = f"the first questions did not arrive:\n{process.log_tail()}"
            return
        await clients.quiet()
        for n in range(BURSTS):
            echo.traffic.reset()
            await echo.warm_up_quietly()
            settle_sandbox()
            result.echo.append(await echo.burst(1, echo_pid))
            settle_sandbox()
            step = await clients.step(f"question {n + 1}", SCALE_CHOICE, typed, process.pid)
            result.bursts.append(step)
            print(f"  {result.label:<22} burst {n + 1}: {step.describe()}", flush=True)
            print(f"  {'echo (PTB only)':<22} burst {n + 1}: {result.echo[-1].describe()}")
        settle_sandbox()
        result.paced = await clients.step(
            "paced", SCALE_CHOICE, typed, process.pid, rate=PACED_RATE
        )
        print(f"  {result.label:<22} paced  : {result.paced.describe()}", flush=True)
        # The rest of the check-in: the last scale question, the yes/no one, the comment.
        for choice in (SCALE_CHOICE, NO_CHOICE):
            await clients.step("rest", choice, typed, process.pid)
        end = await clients.step(
            "end", SKIP_CHOICE, typed, process.pid, until=lambda c: c in calls.thanks
        )
        if end.answered != end.count:
            result.error = f"{end.count - end.answered} check-ins did not end with the thanks"
        if await outbox_pending(url):
            result.error = "messages left unsent in the outbox"
        result.whole_methods = Counter(calls.methods)
        result.whole_calls = calls.total() / len(clients.users)
    finally:
        code = await process.stop()
        if code not in (0, None) and result.error is None:
            result.error = f"the bot exited with {code}:\n{process.log_tail()}"


async def run(users_count: int, profile: Path | None) -> int:
    sandbox = Sandbox()
    await sandbox.start()
    rapport_bot = sandbox.add_bot(DEFAULT_TOKEN, username="rapport_bench_bot")
    echo_bot = sandbox.add_bot(ECHO_TOKEN, username="echo_bench_bot", first_name="Echo")
    users = [sandbox.user(first_name=f"C{n}") for n in range(users_count)]
    for user in users:  # each client started the chat long ago, during onboarding
        sandbox.world.conversation(rapport_bot, sandbox.world.chats[user.id]).started = True
    print(
        f"answer: {users_count} clients with an open check-in; {BURSTS} questions in bursts "
        f"(the echo bot's burst before each), one at {PACED_RATE:.0f}/s, then the rest of the "
        f"check-in; load average {os.getloadavg()[0]:.2f}"
    )
    if "postgres" not in backends():
        print(f"  (PostgreSQL not measured: set {' or '.join(POSTGRES_ENVS)})")
    echo_process = BotProcess.echo(sandbox.api_url, ECHO_TOKEN, CONCURRENCY)
    results: list[tuple[str, RunResult]] = []
    try:
        await echo_process.start()
        echo = EchoLoad(sandbox, echo_bot, users)
        if (error := await echo.warm_up(echo_process)) is not None:
            raise RuntimeError(error)
        for backend in backends():
            async with database(backend) as template:
                await build_template(template, users)
                for typed in (False, True):
                    label = f"{'typed' if typed else 'tap'} ({backend})"
                    result = RunResult(label, typed)
                    try:
                        async with copied(template) as url:
                            clients = Clients(sandbox, rapport_bot, users)
                            await one_run(
                                url,
                                sandbox.api_url,
                                clients,
                                echo,
                                echo_process.pid,
                                result,
                                typed,
                                None if profile is None else profile.with_suffix(f".{label}"),
                            )
                    except Exception as exc:  # a broken part of the bot is a finding
                        result.error = f"{type(exc).__name__}: {exc}"
                    results.append((backend, result))
    finally:
        await echo_process.stop()
        await sandbox.stop()
    return report(results)


class EchoLoad(Load):
    async def warm_up_quietly(self) -> None:
        """A few texts before the echo bot's burst: its connections were idle meanwhile."""
        self.traffic.reset()
        for user in self.users[:ECHO_WARM_UP]:
            await self.send(user)
        await self.replies(min(ECHO_WARM_UP, len(self.users)), 30.0)


def median(values: list[float]) -> float:
    ordered = sorted(v for v in values if not math.isnan(v))
    return ordered[len(ordered) // 2] if ordered else math.nan


def report(results: list[tuple[str, RunResult]]) -> int:
    ok = bool(results)
    figures: list[str] = []
    print(
        f"\n  {'run':<16} {'ans/s':>6} {'echo/s':>7} {'ratio':>6} {'CPU/ans':>8} {'echo CPU':>9} "
        f"{'calls/ans':>9} {'p50 burst':>10} {'p50@100/s':>10} {'p99@100/s':>10} "
        f"{'calls/check-in':>14}"
    )
    for _backend, r in results:
        if r.error:
            print(f"  {r.label}: FAILED: {r.error}")
            ok = False
        ratios = r.ratios()
        mid = (
            sorted(range(len(ratios)), key=lambda i: ratios[i])[len(ratios) // 2]
            if ratios
            else None
        )
        burst = r.bursts[mid] if mid is not None else None
        echo = r.echo[mid] if mid is not None else None
        cpu = burst.cpu / burst.answered if burst and burst.answered else math.nan
        echo_cpu = echo.bot_cpu / echo.answered if echo and echo.answered else math.nan
        calls = median([s.calls for s in r.bursts])
        p99 = percentile(r.paced.latencies, 99) if r.paced else math.nan
        ratio = median(ratios)
        print(
            f"  {r.label:<16} {burst.throughput if burst else math.nan:>6,.0f} "
            f"{echo.throughput if echo else math.nan:>7,.0f} {ratio:>6.2f} {ms(cpu):>8} "
            f"{ms(echo_cpu):>9} {calls:>9.2f} "
            f"{ms(percentile(burst.latencies, 50) if burst else math.nan):>10} "
            f"{ms(percentile(r.paced.latencies, 50) if r.paced else math.nan):>10} "
            f"{ms(p99):>10} {r.whole_calls:>14.1f}"
        )
        if r.whole_methods:
            clients = max(1, r.bursts[0].count if r.bursts else 1)
            print(
                f"  {'':<16} a whole check-in, per client: "
                + ", ".join(f"{m} {n / clients:.1f}" for m, n in sorted(r.whole_methods.items()))
            )
        # The throughput target is the tap's, the path clients are given (a typed answer costs
        # the same two calls but queues two messages: reported, with no target of its own).
        fast = r.typed or ratio >= TARGET_RATIO
        ok = ok and fast and p99 < TARGET_P99 and calls <= TARGET_CALLS
        figures.append(f"{r.label} ratio {ratio:.2f} calls {calls:.2f} p99 {ms(p99)}")
    figure = "; ".join(figures) or "nothing measured"
    target = f"tap ratio ≥ {TARGET_RATIO}, ≤ {TARGET_CALLS:g} calls, p99 < 100 ms"
    print(summary("answer", figure, target, ok))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer clients")
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="run the bot under cProfile; stats written to PROFILE.<run> (pstats)",
    )
    args = parser.parse_args()
    users = args.users or (150 if args.quick else 300)
    sys.exit(asyncio.run(run(users, args.profile)))


if __name__ == "__main__":
    main()
