"""The demo's therapist: joins through their invite and reads what Rapport sends them, as they would
in Telegram: digest charts with a caption, digest texts, urgent alerts and short notes.

Everything the checks rely on is taken from these received messages; the database is consulted
only to tell which session a digest was for.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from devtools.demo.people import LANG, REPLY_WAIT, prefix, sent_at, text_of
from devtools.demo.time import Watch
from devtools.demo.transcript import Transcript
from devtools.sandbox import Sandbox, SandboxUser
from flows.i18n import t
from insights.texts import text as therapist_text
from storage.models import Client, TherapySession

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MARKS = {"‼": "alert", "•": "watch", "·": "info"}
_NOTES = ("joined", "declined", "stopped", "deleted", "paused", "paused_open", "resumed",
          "unreachable")  # fmt: skip


def _head(key: str) -> str:
    return therapist_text("en", key).split("{", 1)[0]


DIGEST_TITLE = _head("digest.title")
ALL_WELL = _head("digest.all_well")
ALL_WELL_NO_TOTAL = _head("digest.all_well.no_total")
TOO_LITTLE = _head("digest.too_little")
RISK_SINCE = (_head("digest.risk.since_session"), _head("digest.risk.since_start"))
URGENT_ALERT = "‼ " + _head("digest.risk.crisis")


def slug(alias: str) -> str:
    """A file-name-safe form of an alias ('M.S.' -> 'MS')."""
    return "".join(ch for ch in alias if ch.isalnum() or ch in "-_") or "client"


@dataclass
class ReceivedDigest:
    """A digest as the therapist got it, and the session it came before."""

    alias: str
    client_id: int
    session_at: datetime
    received_at: datetime
    text: str
    chart: bytes | None = None
    chart_file: str | None = None

    def marks(self) -> dict[str, int]:
        """Signals listed, by severity (the digest's own marks at the start of a line)."""
        counts = {"alert": 0, "watch": 0, "info": 0}
        for line in self.text.splitlines():
            mark = line[:1]
            if mark in _MARKS and line[1:2] == " ":
                counts[_MARKS[mark]] += 1
        return counts

    @property
    def all_well(self) -> bool:
        """The headline's finding (after 'Digest for A.S.: ') says all is well."""
        head = self.text.splitlines()[0] if self.text else ""
        finding = head[len(DIGEST_TITLE) :].split(": ", 1)[-1]
        return finding.startswith((ALL_WELL, ALL_WELL_NO_TOTAL))

    @property
    def opens_with_risk(self) -> bool:
        """The risk block comes right after the title, before anything else."""
        lines = self.text.splitlines()
        return len(lines) > 1 and lines[1] in RISK_SINCE

    @property
    def urgent_alerts(self) -> int:
        """Urgent alerts (risk language) the digest lists."""
        return sum(line.startswith(URGENT_ALERT) for line in self.text.splitlines())

    @property
    def too_little_data(self) -> bool:
        return any(line.startswith(TOO_LITTLE) for line in self.text.splitlines())

    @property
    def flagged(self) -> bool:
        marks = self.marks()
        return marks["alert"] + marks["watch"] > 0 and not self.all_well


@dataclass
class UrgentAlert:
    alias: str
    at: datetime
    # The therapist taps "I've contacted the client": what the alert then shows in its place.
    acknowledged: str | None = None


class TherapistView:
    def __init__(
        self,
        watch: Watch,
        sandbox: Sandbox,
        transcript: Transcript,
        out: Path,
        first_name: str,
    ) -> None:
        self.watch = watch
        self.sandbox = sandbox
        self.transcript = transcript
        self.out = out
        self.user: SandboxUser = sandbox.user(first_name, language_code=LANG)
        self.digests: list[ReceivedDigest] = []
        self.alerts: list[UrgentAlert] = []
        self._chart: tuple[str, bytes] | None = None  # (alias, PNG) waiting for its text
        self._urgent = prefix("therapist.alert_crisis_text")
        self._withdrawal = prefix("alert.withdrawal")
        self._notes = {
            t(LANG, f"therapist.client_{kind}").split("}", 1)[1].split("{", 1)[0]: kind
            for kind in _NOTES
        }

    async def join(self, token: str) -> None:
        await self.user.send(f"/start {token}")
        welcome = prefix("therapist.welcome")[:20]
        await self.user.next_message(REPLY_WAIT, predicate=lambda m: text_of(m).startswith(welcome))

    async def run(self) -> None:
        """Read everything that arrives until cancelled."""
        while True:
            try:
                message = await self.user.next_message(timeout=3600.0)
            except TimeoutError:
                continue
            await self.read(message)

    async def read(self, message: dict[str, Any]) -> None:
        text = text_of(message)
        at = sent_at(message)
        if "photo" in message and text.startswith(DIGEST_TITLE):
            self._chart = (_alias_in_title(text), self._photo_bytes(message))
        elif text.startswith(DIGEST_TITLE):
            await self._digest(text, at)
        elif text.startswith(self._urgent):
            alias = text[len(self._urgent) :].split(maxsplit=1)[0]
            alert = UrgentAlert(alias, at)
            self.alerts.append(alert)
            self.transcript.event(at, f"⚠ urgent alert to the therapist about {alias}", "bold red")
            await self._acknowledge(alert, message)
        elif text.startswith(self._withdrawal):
            alias = text[len(self._withdrawal) :].split(maxsplit=1)[0]
            self.transcript.event(at, f"⚑ between-session alert about {alias}", "bold yellow")
        elif (note := self._note(text)) is not None:
            self.transcript.event(at, f"therapist notified: {note}", style="dim")
        elif self.digests and self.digests[-1].received_at == at:
            self.digests[-1].text += "\n" + text  # a long digest's continuation

    async def _acknowledge(self, alert: UrgentAlert, message: dict[str, Any]) -> None:
        """The therapist calls the client, then taps "I've contacted the client": the alert's
        buttons give way to who acknowledged it and how."""
        label = t(LANG, "alert.button_contacted")
        try:
            await self.user.tap(message, button_text=label)
            await self.sandbox.wait_until(
                lambda: self._acknowledged_text(message) is not None,
                REPLY_WAIT,
                what="the alert edited to show the acknowledgement",
            )
        except (TimeoutError, KeyError, ValueError):
            return  # the check reports it
        shown = self._acknowledged_text(message)
        alert.acknowledged = shown
        if shown is not None:
            at = sent_at(message)
            self.transcript.event(at, f"✓ {shown.splitlines()[-1].lstrip('✅ ')}", "bold green")

    def _acknowledged_text(self, message: dict[str, Any]) -> str | None:
        now = next((m for m in self.user.inbox if m["message_id"] == message["message_id"]), None)
        if now is None or now.get("reply_markup") or "\n\n✅ " not in text_of(now):
            return None
        return text_of(now)

    def _note(self, text: str) -> str | None:
        for tail, kind in self._notes.items():
            alias, _, rest = text.partition(" ")
            if tail.strip() and (" " + rest).startswith(tail):
                return f"{alias} {kind.replace('_open', '').replace('_', ' ')}"
        return None

    def _photo_bytes(self, message: dict[str, Any]) -> bytes:
        largest = message["photo"][-1]
        stored = self.sandbox.world.files.get(largest["file_id"])
        return stored.data if stored is not None else b""

    async def _digest(self, text: str, at: datetime) -> None:
        alias = _alias_in_title(text)
        client_id, session_at = await self._session_of(alias)
        digest = ReceivedDigest(alias, client_id, session_at, at, text)
        if self._chart is not None and self._chart[0] == alias:
            digest.chart = self._chart[1]
            digest.chart_file = self._save_chart(alias, session_at, digest.chart)
        self._chart = None
        self.digests.append(digest)
        self.transcript.event(at, _digest_line(digest, self.transcript), style="bold")

    async def _session_of(self, alias: str) -> tuple[int, datetime]:
        """The session whose digest went out last for this client."""
        async with self.watch.sessions() as s:
            row = (
                await s.execute(
                    select(Client.id, TherapySession.starts_at)
                    .join(TherapySession, TherapySession.client_id == Client.id)
                    .where(Client.alias == alias, TherapySession.digest_sent_at.is_not(None))
                    .order_by(TherapySession.digest_sent_at.desc())
                    .limit(1)
                )
            ).first()
        if row is None:
            return 0, datetime.fromtimestamp(0, UTC)
        return int(row[0]), row[1]

    def _save_chart(self, alias: str, session_at: datetime, png: bytes) -> str | None:
        if not png.startswith(PNG_SIGNATURE):
            return None
        day = session_at.astimezone(self.transcript.zone).date().isoformat()
        name = f"digest-{slug(alias)}-{day}.png"
        with contextlib.suppress(OSError):
            (self.out / name).write_bytes(png)
            return name
        return None


def _alias_in_title(text: str) -> str:
    """'Digest for A.S.: Alliance falling…' → 'A.S.' (the finding follows the alias)."""
    return text.splitlines()[0][len(DIGEST_TITLE) :].split(": ", 1)[0].strip()


def _digest_line(digest: ReceivedDigest, transcript: Transcript) -> str:
    when = transcript.stamp(digest.session_at)
    head = f"📋 digest for {digest.alias} before {when}: "
    marks = digest.marks()
    serious = marks["alert"] + marks["watch"]
    if digest.too_little_data:
        return head + "too little data yet"
    if digest.all_well or not serious:
        return head + "all well"
    parts = [f"{marks[k]} {k}" for k in ("alert", "watch") if marks[k]]
    plural = "s" if serious != 1 else ""
    return head + f"{serious} signal{plural} ({', '.join(parts)})"
