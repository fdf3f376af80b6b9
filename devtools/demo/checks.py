"""The demo's verdict: did Rapport tell the story the clients lived?

Each check reads what the therapist actually received. A digest counts as flagging a client when
it lists a watch or alert signal; for the withdrawing and falling clients the signal must also be
of the right kind (silence and its relatives; the alliance family), which is taken from the digest
rebuilt for the same moment and trusted only when its text matches the received one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from devtools.demo.report import ClientFacts, DigestFacts
from devtools.demo.story import CRISIS, ENGAGED, FALLING, WITHDRAWING
from devtools.demo.therapist import UrgentAlert
from insights.texts import signal_name

WITHDRAWAL_CODES = frozenset({"silence", "slowing", "partial", "terse", "unreachable", "stopped"})
ALLIANCE_CODES = frozenset({"falling_alliance", "low_alliance", "item_drop", "confrontation"})
ALERT_WITHIN = timedelta(minutes=5)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


def _by_story(clients: list[ClientFacts], story: str) -> ClientFacts | None:
    return next((c for c in clients if c.story == story), None)


def _flagging(digest: DigestFacts, codes: frozenset[str]) -> bool:
    if not digest.received.flagged:
        return False
    return not digest.verified or bool(digest.serious_codes() & codes)


def flagged_before_session(client: ClientFacts | None, codes: frozenset[str], what: str) -> Check:
    name = f"the {what} client was flagged in a digest before a session"
    if client is None:
        return Check(name, False, "no such client in the cast")
    hits = [d for d in client.digests if _flagging(d, codes)]
    if not hits:
        seen = len(client.digests)
        return Check(name, False, f"{client.alias}: none of {seen} digests listed such a signal")
    first = hits[0]
    kinds = [signal_name(c) for c in sorted(first.serious_codes() & codes)] or ["a watch signal"]
    when = first.received.session_at.strftime("%d %b")
    lead = first.received.session_at - first.received.received_at
    hours = lead.total_seconds() / 3600
    return Check(
        name,
        True,
        f"{client.alias}: {', '.join(kinds)} in the digest for {when}, {hours:.1f} h before",
    )


def engaged_all_well(client: ClientFacts | None) -> Check:
    name = "the engaged client's last digest says all is well"
    if client is None or not client.digests:
        return Check(name, False, "no digest received for the engaged client")
    last = client.digests[-1]
    if last.received.all_well:
        return Check(name, True, f"{client.alias}: 'no signs of withdrawal'")
    marks = last.received.marks()
    return Check(name, False, f"{client.alias}: the last digest listed {marks}")


def crisis_alert(client: ClientFacts | None, alerts: list[UrgentAlert]) -> Check:
    name = "the crisis message raised an urgent alert at once"
    if client is None or client.crisis_sent_at is None:
        return Check(name, False, "the crisis message was never sent")
    sent = client.crisis_sent_at
    mine = [a for a in alerts if a.alias == client.alias and a.at >= sent - timedelta(seconds=1)]
    if not mine:
        return Check(name, False, f"{client.alias}: no urgent alert reached the therapist")
    delay = mine[0].at - sent
    resources = client.crisis_reply_at is not None
    ok = delay <= ALERT_WITHIN and resources
    detail = f"{client.alias}: alert {delay.total_seconds() / 60:.1f} min after the message"
    detail += ", crisis resources shown to the client" if resources else ", NO crisis resources"
    return Check(name, ok, detail)


def crisis_in_next_digest(client: ClientFacts | None) -> Check:
    name = "the crisis client's next digest opens with the urgent alert"
    if client is None or client.crisis_sent_at is None:
        return Check(name, False, "the crisis message was never sent")
    sent = client.crisis_sent_at
    after = [d.received for d in client.digests if d.received.received_at >= sent]
    if not after:
        return Check(name, False, f"{client.alias}: no digest after the crisis message")
    nxt = after[0]
    when = nxt.session_at.strftime("%d %b")
    ok = nxt.opens_with_risk and nxt.urgent_alerts > 0 and not nxt.all_well
    if ok:
        return Check(name, True, f"{client.alias}: the digest for {when} opens with it")
    return Check(name, False, f"{client.alias}: the digest for {when} does not open with it")


def crisis_acknowledged(client: ClientFacts | None, alerts: list[UrgentAlert]) -> Check:
    name = "the therapist acknowledged the urgent alert, and the alert shows it"
    if client is None:
        return Check(name, False, "no crisis client in the cast")
    mine = [a for a in alerts if a.alias == client.alias]
    shown = [a.acknowledged for a in mine if a.acknowledged]
    if not mine or len(shown) != len(mine):
        return Check(
            name, False, f"{client.alias}: {len(shown)} of {len(mine)} alerts acknowledged"
        )
    line = shown[0].splitlines()[-1].lstrip("✅ ")
    return Check(name, True, f"{client.alias}: buttons replaced by “{line}”")


def every_step_answered(clients: list[ClientFacts]) -> Check:
    name = "the bot answered every tap and message of the check-ins"
    stuck = {c.alias: c.stuck for c in clients if c.stuck}
    if stuck:
        return Check(name, False, f"no reply within the wait: {stuck}")
    return Check(name, True, "no client was left waiting")


def verify(clients: list[ClientFacts], alerts: list[UrgentAlert]) -> list[Check]:
    return [
        every_step_answered(clients),
        flagged_before_session(_by_story(clients, WITHDRAWING), WITHDRAWAL_CODES, "withdrawing"),
        flagged_before_session(_by_story(clients, FALLING), ALLIANCE_CODES, "falling-alliance"),
        engaged_all_well(_by_story(clients, ENGAGED)),
        crisis_alert(_by_story(clients, CRISIS), alerts),
        crisis_in_next_digest(_by_story(clients, CRISIS)),
        crisis_acknowledged(_by_story(clients, CRISIS), alerts),
    ]
