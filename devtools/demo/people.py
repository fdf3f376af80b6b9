"""The demo's simulated clients: each reads the bot's messages in the sandbox and answers as a
person would, by tapping buttons and typing, at the simulated moment their story says.

A client looks only at what a Telegram user sees: the messages, their buttons, and the bot's
answers to taps. The clock is held while they tap through a check-in, so a five-tap check-in takes
the minute it takes in life rather than the hours the time-lapse would make of the bot's
milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devtools.demo.clock import Alarm, HeldTimelapse
from devtools.demo.story import CRISIS_COMMENT, Persona, Reply
from devtools.demo.transcript import Transcript
from devtools.sandbox import ActionError, Sandbox, SandboxUser, buttons_of
from flows.checkin import INTRO_KEYS
from flows.i18n import t
from flows.instruments import load_instrument
from flows.moments import MOMENTS, SESSION, Moment
from flows.plan import plan_items

LANG = "en"
REPLY_WAIT = 10.0  # wall seconds for the bot to answer one tap while the clock is held
# A moment of wall time to read before acting. It also lets the bot finish recording what it
# just sent, so the next update does not queue behind that write on SQLite's lock (whose
# waits back off in steps of milliseconds and cost more than this pause).
READ_PAUSE = 0.01
Message = dict[str, Any]


def prefix(key: str) -> str:
    """The fixed start of a catalog text (up to its first placeholder)."""
    return t(LANG, key).split("{", 1)[0].strip()


def sent_at(message: Message) -> datetime:
    return datetime.fromtimestamp(int(message["date"]), UTC)


def callback_data(message: Message) -> list[str]:
    return [str(b["callback_data"]) for b in buttons_of(message) if "callback_data" in b]


def checkin_position(message: Message) -> tuple[int, int] | None:
    """(check-in id, item index) of a check-in question's buttons, or None."""
    for data in callback_data(message):
        parts = data.split(":")
        if len(parts) == 4 and parts[0] == "c" and parts[1].isdigit() and parts[2].isdigit():
            return int(parts[1]), int(parts[2])
    return None


def text_of(message: Message) -> str:
    return str(message.get("text") or message.get("caption") or "")


@dataclass
class CheckinLog:
    """What one client lived through, for the summary and the checks."""

    received: list[datetime] = field(default_factory=list)
    reminders: int = 0
    answered: int = 0
    abandoned: int = 0
    too_late: int = 0
    stuck: int = 0
    crisis_sent_at: datetime | None = None
    crisis_reply_at: datetime | None = None


class ClientAgent:
    """One simulated client, talking to the bot through the sandbox."""

    def __init__(
        self,
        persona: Persona,
        client_id: int,
        sandbox: Sandbox,
        clock: HeldTimelapse,
        transcript: Transcript,
        course_checkins: int,
        seed: int,
        instrument: str = "rapport-brief",
    ) -> None:
        self.persona = persona
        self.client_id = client_id
        self.sandbox = sandbox
        self.clock = clock
        self.transcript = transcript
        self.course_checkins = course_checkins
        self.rng = random.Random(seed)
        self.thinking = random.Random(seed + 1)  # seconds between taps, apart from the story
        brief = load_instrument(instrument)
        self.items = {m: plan_items(brief, safety_item=False, moment=m) for m in MOMENTS}
        self.moment: Moment = SESSION  # what the latest check-in asked about
        self.user: SandboxUser = sandbox.user(persona.name.split()[0], language_code=LANG)
        self.log = CheckinLog()
        self._seen: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def alias(self) -> str:
        return self.persona.alias

    # --- acting -----------------------------------------------------------------------------

    async def _tap(self, message: Message, data: str | None = None, **kwargs: Any) -> Message:
        await asyncio.sleep(READ_PAUSE)
        return await self.user.tap(message, data, **kwargs)

    async def _send(self, text: str) -> Message:
        await asyncio.sleep(READ_PAUSE)
        return await self.user.send(text)

    # --- joining ----------------------------------------------------------------------------

    async def join(self, token: str) -> None:
        """Open the invite link and answer onboarding by taps: language, consent, time zone."""
        view = self._view()
        await self._send(f"/start {token}")
        language = await view.next_message(REPLY_WAIT, predicate=_has_buttons)
        await self._tap(language, button_text=t(LANG, "language.name"))
        consent = await view.next_message(REPLY_WAIT, predicate=_has_buttons)
        await self._tap(consent, button_text=t(LANG, "button.agree"))
        zone = await view.next_message(REPLY_WAIT, predicate=_has_buttons)
        if self.persona.zone is None:  # no zone from the practice: pick one of the suggestions
            wanted = f":tz:{self.persona.zone_button}"
            data = next(d for d in callback_data(zone) if d.endswith(wanted))
            await self._tap(zone, data)
            zone = await view.next_message(REPLY_WAIT, predicate=_has_buttons)
        await self._tap(zone, button_text=t(LANG, "button.yes"))
        done = prefix("onboarding.done")[:20]
        await view.next_message(REPLY_WAIT, predicate=lambda m: text_of(m).startswith(done))
        self.user.skip_to_end()

    # --- living with the bot ----------------------------------------------------------------

    async def run(self) -> None:
        """Read every new message; plan an answer to each new check-in. Runs until cancelled."""
        reminder = prefix("checkin.nudge")
        try:
            while True:
                try:
                    message = await self.user.next_message(timeout=3600.0)
                except TimeoutError:
                    continue
                position = checkin_position(message)
                if position is not None and position[0] not in self._seen:
                    self._new_checkin(position[0], sent_at(message))
                elif text_of(message).startswith(reminder):
                    self.log.reminders += 1
                    self.transcript.event(
                        sent_at(message), self.alias, style="dim", lead="reminder sent to "
                    )
        finally:
            await self.stop()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def _new_checkin(self, checkin_id: int, at: datetime) -> None:
        k = len(self._seen)
        self._seen.add(checkin_id)
        self.log.received.append(at)
        self.transcript.event(at, self.alias, style="cyan", lead="check-in sent to ")
        reply = self.persona.script(k, self.course_checkins, self.rng)
        if reply is None:
            return
        alarm = self.clock.alarm(at + reply.delay)  # set at once, before time can pass it
        task = asyncio.create_task(self._answer_later(checkin_id, alarm, reply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_later(self, checkin_id: int, alarm: Alarm, reply: Reply) -> None:
        try:
            await alarm.wait()
            self.clock.acquire()  # time stands still while the client taps
        finally:
            alarm.dismiss()
        try:
            started = self.clock.now()
            try:
                outcome = await self._answer(checkin_id, reply)
            except (TimeoutError, ActionError):
                outcome = "stuck"
            self._report(outcome, started, reply)
        finally:
            self.clock.release()

    def _report(self, outcome: str, at: datetime, reply: Reply) -> None:
        scores = _ASKED.get(self.moment) or "/".join(str(v) for v in reply.alliance)
        if outcome == "answered":
            self.log.answered += 1
            extras = []
            if reply.tension:
                talked = "talked through" if reply.talked else "not talked through"
                extras.append(f"tension reported, {talked}")
            if reply.comment:
                extras.append("crisis language" if _is_crisis_story(reply) else "with a comment")
            detail = f" · {'; '.join(extras)}" if extras else ""
            self.transcript.event(at, f"{self.alias} answered ({scores}){detail}", style="green")
            if _is_crisis_story(reply) and self.log.crisis_reply_at is not None:
                self.transcript.event(
                    self.log.crisis_reply_at,
                    f"🛟 crisis resources shown to {self.alias} at once",
                    style="bold magenta",
                )
        elif outcome == "abandoned":
            self.log.abandoned += 1
            self.transcript.event(
                at, f"{self.alias} started the check-in and left it half-way", style="yellow"
            )
        elif outcome == "stuck":
            self.log.stuck += 1
            self.transcript.event(at, f"{self.alias} got no reply from the bot", style="bold red")
        else:
            self.log.too_late += 1
            self.transcript.event(
                at, f"{self.alias} came back too late: the check-in had closed", style="dim"
            )

    # --- one check-in, tap by tap ------------------------------------------------------------

    async def _answer(self, checkin_id: int, reply: Reply) -> str:
        """Tap through the open check-in; 'answered', 'abandoned' or 'closed'."""
        view = self._view()
        found = self._current_question(checkin_id)
        self.moment = self._moment_of(found[0]) if found is not None else SESSION
        items = self.items[self.moment]
        answered = 0
        while found is not None:
            question, index = found
            item = items[index] if index < len(items) else "comment"
            if reply.stop_after is not None and answered >= reply.stop_after:
                return "abandoned"
            self.clock.advance(timedelta(seconds=self.thinking.randint(4, 15)))
            view.skip_to_end()
            if item == "comment":
                return await self._comment(question, checkin_id, index, reply, view)
            value = _value_for(item, reply)
            if self.persona.types:  # typing the answer, as the bot's hint allows
                await self._send(_typed(value, item))
                following = await view.next_message(
                    REPLY_WAIT, predicate=_moved_on(checkin_id, index, closed=True)
                )
                if text_of(following).startswith(prefix("chat.idle_text")):
                    return "closed"  # no check-in open any more: the bot says so
            else:
                last = self._last_id()
                query = await self._tap(question, f"c:{checkin_id}:{index}:{value}")
                if (await self.user.answer_to(query, REPLY_WAIT)).get("text"):
                    return "closed"  # the bot's notice: this check-in is over
                following = await self._after_tap(question, last, _moved_on(checkin_id, index))
            answered += 1
            position = checkin_position(following)
            found = None if position is None else (following, position[1])
        return "closed"

    async def _comment(
        self,
        question: Message,
        checkin_id: int,
        index: int,
        reply: Reply,
        view: SandboxUser,
    ) -> str:
        thanks = prefix("checkin.thanks")
        if reply.comment is None:
            last = self._last_id()
            query = await self._tap(question, f"c:{checkin_id}:{index}:s")
            if (await self.user.answer_to(query, REPLY_WAIT)).get("text"):
                return "closed"
            await self._after_tap(question, last, lambda m: text_of(m).startswith(thanks))
            return "answered"
        else:
            self.clock.advance(timedelta(seconds=20 + 2 * len(reply.comment)))
            sent = await self._send(reply.comment)
            if _is_crisis_story(reply):
                self.log.crisis_sent_at = sent_at(sent)
                crisis = prefix("crisis.reply")
                seen = await view.next_message(
                    REPLY_WAIT, predicate=lambda m: text_of(m).startswith((crisis, thanks))
                )
                if text_of(seen).startswith(crisis):
                    self.log.crisis_reply_at = sent_at(seen)
        await view.next_message(REPLY_WAIT, predicate=lambda m: text_of(m).startswith(thanks))
        return "answered"

    def _moment_of(self, question: Message) -> Moment:
        """What the check-in asks about, as its introduction (the latest before `question`)
        says: a client sees which kind of check-in it is."""
        intros = {prefix(key): moment for moment, key in INTRO_KEYS.items()}
        found: Moment = SESSION
        for message in self.user.inbox:
            if message["message_id"] >= question["message_id"]:
                break
            text = str(message.get("text", ""))
            found = next((m for p, m in intros.items() if text.startswith(p)), found)
        return found

    def _current_question(self, checkin_id: int) -> tuple[Message, int] | None:
        """The newest question of this check-in still showing its buttons (after a reminder
        the same question is shown twice; either counts)."""
        best: tuple[Message, int] | None = None
        for message in self.user.inbox:
            position = checkin_position(message)
            if position is None or position[0] != checkin_id:
                continue
            if best is None or position[1] >= best[1]:
                best = (message, position[1])
        return best

    def _last_id(self) -> int:
        return max((int(m["message_id"]) for m in self.user.inbox), default=0)

    async def _after_tap(
        self, question: Message, last: int, moved: Callable[[Message], bool]
    ) -> Message:
        """What follows a tapped answer: the tapped message as edited in place (the bot shows
        what comes next there, below the choice made; read without that part), or a new message
        after message `last`, whichever `moved` accepts first."""
        found: list[Message] = []

        def arrived() -> bool:
            for message in self.user.inbox:
                if message["message_id"] == question["message_id"]:
                    if text_of(message) == text_of(question):
                        continue
                    parts = text_of(message).split("\n\n", 2)
                    message = {**message, "text": parts[-1]}
                elif int(message["message_id"]) <= last:
                    continue
                if moved(message):
                    found.append(message)
                    return True
            return False

        await self.sandbox.wait_until(arrived, REPLY_WAIT, what="the bot's answer to a tap")
        return found[0]

    def _view(self) -> SandboxUser:
        """A second pair of eyes on the same chat, with its own reading position."""
        view = self.user.with_bot(self.user.bot)
        view.skip_to_end()
        return view


def _has_buttons(message: Message) -> bool:
    return bool(callback_data(message))


def _moved_on(checkin_id: int, index: int, *, closed: bool = False) -> Callable[[Message], bool]:
    """The next question of this check-in, or its thanks (or, with `closed`, the bot's reply
    when no check-in is open)."""
    ends = (
        (prefix("checkin.thanks"), prefix("chat.idle_text"))
        if closed
        else (prefix("checkin.thanks"),)
    )

    def check(message: Message) -> bool:
        position = checkin_position(message)
        if position is not None:
            return position[0] == checkin_id and position[1] > index
        return text_of(message).startswith(ends)

    return check


def _typed(value: str, item: str) -> str:
    if item in ("tension", "talked"):
        return t(LANG, "button.yes" if value == "1" else "button.no").lower()
    return value


# What a check-in that rated no session is reported as in the transcript.
_ASKED: dict[str, str] = {"first": "before the first session", "between": "between sessions"}

# Items the stories do not score themselves, answered like the nearest one they do.
_STAND_IN = {"expectations": "goals", "hope": "overall", "between_work": "goals"}


def _value_for(item: str, reply: Reply) -> str:
    item = _STAND_IN.get(item, item)
    if item == "tension":
        return "1" if reply.tension else "0"
    if item == "talked":
        return "1" if reply.talked else "0"
    return str(reply.score_of(item))


def _is_crisis_story(reply: Reply) -> bool:
    return reply.comment == CRISIS_COMMENT
