"""Therapist-facing wording: signal explanations, digest lines and session openings, per language.

Everything a therapist reads from `insights` comes from `CATALOG[lang]`; English is complete and
other languages fall back to it key by key, so a translation can be added one line at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Final

from insights import config

CATALOG: Final[dict[str, dict[str, str]]] = {
    "en": {
        # signal explanations
        "silence.missed": "{missed} check-ins in a row unanswered (since {since})",
        "silence.quiet": "No reply for {days} days, more than {cadences} check-in intervals",
        "silence.pattern": "Check-ins going quiet since {since}: of the last {window}, "
        "{missed} missed, and {late} answered much later than usual",
        "silence.rate": "Answered {answered} of the last {window} check-ins, "
        "down from {rate_before}% before",
        "slowing": "Replies now take a median {recent}, up from {base}",
        "low_alliance": "Alliance total {total}/{max}, below the cut-off of {cutoff}",
        "low_alliance.run": "Alliance total {total}/{max}, below the cut-off of {cutoff} "
        "for {in_row} check-ins in a row",
        "falling_alliance.baseline": "Alliance total {total}/{max}, {drop} points below "
        "the client's own baseline of {baseline}",
        "falling_alliance.sustained": "Alliance total {total}/{max}, {drop} points below "
        "the client's own baseline of {baseline}, for {sustained} check-ins in a row",
        "falling_alliance.trend": "Alliance total falling over the last {window} check-ins: "
        "{first} → {total}",
        "item_drop": "'{item}' ({domain}) at {value}/10, down from a usual {baseline}",
        "item_drop.low": "'{item}' ({domain}) at {value}/10",
        "partial": "{count} of the last {window} check-ins started but not finished",
        "partial.one": "The latest check-in was started but not finished",
        "terse.stopped": "No comments in the last {window} check-ins, after commenting on "
        "{rate_before}% of the first ones",
        "terse.shrinking": "Comments shrinking: {chars_recent} characters on average, "
        "down from {chars_before}",
        "ceiling": "Perfect scores on the last {in_row} check-ins and no comments: "
        "criticism may be hard to voice",
        "rupture_reported": "Reported tension or a misunderstanding with you on {since}, "
        "not talked through",
        "rupture_reported.repeated": "Reported tension or a misunderstanding with you "
        "{count} times recently, the latest on {since}, not talked through",
        "rupture_reported.resolved": "Reported tension or a misunderstanding with you on "
        "{since}, and says it was talked through",
        "confrontation": "A strongly negative comment about the therapy on {since}",
        "confrontation.repeated": "{count} strongly negative comments about the therapy "
        "recently, the latest on {since}",
        "paused": "Paused check-ins on {since}",
        "stopped": "Stopped check-ins on {since}",
        "unreachable": "Blocked the bot on {since}: messages no longer reach them",
        "together": "{text}, together with {others}",
        # short names, used when signals are combined
        "name.silence": "unanswered check-ins",
        "name.slowing": "slower replies",
        "name.low_alliance": "a low alliance rating",
        "name.falling_alliance": "a falling alliance rating",
        "name.item_drop": "a dropping item",
        "name.partial": "unfinished check-ins",
        "name.terse": "fewer words",
        "name.ceiling": "ceiling scores",
        "name.rupture_reported": "reported tension",
        "name.confrontation": "a negative comment",
        "name.paused": "a pause",
        "name.stopped": "stopping",
        "name.unreachable": "blocking the bot",
        # item names
        "item.heard": "felt heard and respected",
        "item.goals": "worked on what I wanted",
        "item.approach": "the approach fits me",
        "item.overall": "overall",
        "domain.bond": "bond",
        "domain.goals": "goals",
        "domain.approach": "approach",
        "domain.overall": "overall",
        # durations
        "minutes": "{n} minutes",
        "hours": "{n} hours",
        "hour": "1 hour",
        "days": "{n} days",
        # digest
        "digest.title": "Check-in digest: {alias}",
        "digest.session": "Session: {when}",
        "digest.no_session": "No session booked",
        "digest.counts": "Check-ins since the last session: {answered} of {sent} answered",
        "digest.counts.none": "No check-ins since the last session",
        "digest.all_well": "No signs of withdrawal: {answered} of {sent} check-ins answered, "
        "alliance steady at {total}/{max}",
        "digest.all_well.no_total": "No signs of withdrawal: {answered} of {sent} "
        "check-ins answered",
        "digest.too_little": "Too little data yet: {answered} check-in(s) answered so far",
        "digest.signals": "What stands out:",
        "digest.comments": "Comments:",
        "digest.openings": "Possible openings:",
        "digest.alert": "ALERT",
        "digest.watch": "watch",
        "digest.info": "note",
        "digest.latest": "Latest alliance total: {total}/{max}",
        "digest.flagged": "Items at {flag} or below: {items}",
        # openings, from rupture-repair practice
        "opening.silence": "Ask about practicalities and any mixed feelings about coming, "
        "without blame: \"I noticed the check-ins went quiet; how has this been fitting "
        "into your week?\"",
        "opening.metacommunication": "Invite a direct conversation about the relationship: "
        "\"I have a sense something between us may have shifted; could we look at that "
        "together?\"",
        "opening.goals": "Revisit the goals together: \"Are we still working on what matters "
        "most to you right now?\"",
        "opening.rationale": "Give the rationale for the task or approach the client "
        "struggles with, and ask how well it fits them.",
        "opening.validate": "Acknowledge and validate the client's experience of what went "
        "wrong, and take your share of it without defending.",
        "opening.ceiling": "Make criticism easy: \"What is one thing I could do differently "
        "that would make this more useful?\"",
        "opening.resume": "Ask whether the timing or the number of check-ins suits them, and "
        "whether the pause says something about the therapy.",
    },
}

MONTHS: Final[dict[str, tuple[str, ...]]] = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}
WEEKDAYS: Final[dict[str, tuple[str, ...]]] = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def text(lang: str, key: str, **values: object) -> str:
    """The catalog entry for `key` in `lang` (English when missing), filled in."""
    template = CATALOG.get(lang, {}).get(key) or CATALOG["en"][key]
    return template.format(**values) if values else template


def has_key(lang: str, key: str) -> bool:
    return key in CATALOG.get(lang, {}) or key in CATALOG["en"]


def short_date(moment: datetime, zone: tzinfo, lang: str = "en") -> str:
    """'12 Mar' in the reader's time zone."""
    local = moment.astimezone(zone)
    months = MONTHS.get(lang, MONTHS["en"])
    return f"{local.day} {months[local.month - 1]}"


def date_time(moment: datetime, zone: tzinfo, lang: str = "en") -> str:
    """'Tue 14 Mar, 18:00' in the reader's time zone."""
    local = moment.astimezone(zone)
    days = WEEKDAYS.get(lang, WEEKDAYS["en"])
    return f"{days[local.weekday()]} {short_date(local, zone, lang)}, {local:%H:%M}"


def duration(hours: float, lang: str = "en") -> str:
    """A delay in the unit a person would use: minutes, hours, or days."""
    if hours < 1:
        return text(lang, "minutes", n=max(1, round(hours * 60)))
    if hours < 1.5:
        return text(lang, "hour")
    if hours < 36:
        return text(lang, "hours", n=round(hours))
    return text(lang, "days", n=f"{hours / 24:.1f}")


def number(value: float | int | str) -> str:
    """36.0 → '36', 37.5 → '37.5'."""
    if type(value) is float and value.is_integer():
        return str(int(value))
    return str(value)


def names(codes: str, lang: str) -> str:
    """'slowing,falling_alliance' → 'slower replies and a falling alliance rating'."""
    parts = [text(lang, f"name.{code}") for code in codes.split(",") if code]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def explain(
    code: str,
    severity: str,
    since: datetime,
    evidence: Mapping[str, float | int | str],
    zone: tzinfo,
    lang: str = "en",
) -> str:
    """One plain sentence a therapist understands, with the numbers."""
    e = {key: number(value) for key, value in evidence.items()}
    day = short_date(since, zone, lang)
    sentence = _sentence(code, e, evidence, day, lang)
    others = str(evidence.get("with", ""))
    if others:
        sentence = text(lang, "together", text=sentence, others=names(others, lang))
    return sentence


def _sentence(
    code: str,
    e: dict[str, str],
    raw: Mapping[str, float | int | str],
    day: str,
    lang: str,
) -> str:
    reason = e.get("reason", "")
    if code == "silence":
        if reason == "missed":
            return text(lang, "silence.missed", missed=e["missed_in_row"], since=day)
        if reason == "pattern":
            return text(
                lang,
                "silence.pattern",
                since=day,
                window=e["window"],
                missed=e["missed_recent"],
                late=e["late_recent"],
            )
        if reason == "quiet":
            cadence = float(raw.get("cadence_days", 1)) or 1.0
            cadences = float(raw.get("days_since_reply", 0)) / cadence
            return text(
                lang, "silence.quiet", days=e["days_since_reply"], cadences=int(cadences)
            )
        return text(
            lang,
            "silence.rate",
            answered=e["answered"],
            window=e["window"],
            rate_before=e["rate_before_pct"],
        )
    if code == "slowing":
        return text(
            lang,
            "slowing",
            recent=duration(float(raw["median_delay_hours"]), lang),
            base=duration(float(raw["baseline_delay_hours"]), lang),
        )
    if code == "low_alliance":
        key = "low_alliance.run" if int(raw.get("in_row", 1)) > 1 else "low_alliance"
        return text(
            lang,
            key,
            total=e["total"],
            max=config.TOTAL_MAX,
            cutoff=e["cutoff"],
            in_row=e["in_row"],
        )
    if code == "falling_alliance":
        if reason == "trend":
            return text(
                lang,
                "falling_alliance.trend",
                window=e["window"],
                first=e["first"],
                total=e["total"],
            )
        key = (
            "falling_alliance.sustained"
            if int(raw.get("sustained", 1)) > 1
            else "falling_alliance.baseline"
        )
        return text(lang, key, max=config.TOTAL_MAX, **e)
    if code == "item_drop":
        key = f"item.{raw['item']}"
        item = text(lang, key) if has_key(lang, key) else e["item"]
        domain = text(lang, f"domain.{raw['domain']}")
        if "baseline" in e and float(raw.get("drop", 0)) > 0:
            return text(
                lang,
                "item_drop",
                item=item,
                domain=domain,
                value=e["value"],
                baseline=e["baseline"],
            )
        return text(lang, "item_drop.low", item=item, domain=domain, value=e["value"])
    if code == "partial":
        if int(raw.get("count", 1)) <= 1:
            return text(lang, "partial.one")
        return text(lang, "partial", count=e["count"], window=e["window"])
    if code == "terse":
        if reason == "shrinking":
            return text(
                lang,
                "terse.shrinking",
                chars_recent=e["chars_recent"],
                chars_before=e["chars_before"],
            )
        return text(
            lang, "terse.stopped", window=e["window"], rate_before=e["rate_before_pct"]
        )
    if code == "ceiling":
        return text(lang, "ceiling", in_row=e["in_row"])
    if code == "rupture_reported":
        if raw.get("talked_through") == "yes":
            return text(lang, "rupture_reported.resolved", since=day)
        count = int(raw.get("unresolved_recent", 1))
        if count > 1:
            return text(lang, "rupture_reported.repeated", count=count, since=day)
        return text(lang, "rupture_reported", since=day)
    if code == "confrontation":
        count = int(raw.get("count_recent", 1))
        if count > 1:
            return text(lang, "confrontation.repeated", count=count, since=day)
        return text(lang, "confrontation", since=day)
    if has_key(lang, code):
        return text(lang, code, since=day)
    return code.replace("_", " ")
