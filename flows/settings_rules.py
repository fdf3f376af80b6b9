"""What the practice's settings can hold, checked before anything is stored.

Every duration is written in the one grammar of `flows.timing.parse_duration` (`3h`, `90m`, `2d`,
`1h30m`) and stored in the unit its column has: retention in whole days, the nudge and the expiry
in whole hours, the digest lead in minutes. A value the unit cannot hold is refused, never rounded
(`--retention 1h` once became 0 days, and housekeeping then deleted everything). Each error is one
line that names the option.
"""

from __future__ import annotations

from datetime import timedelta

from flows.timing import format_duration, parse_duration
from flows.visible import visible_text

MAX_DIGEST_LEAD = timedelta(days=7)
"""A digest sent more than a week ahead would describe a different stretch of therapy."""
MIN_ALERT_ESCALATION = timedelta(minutes=5)
MAX_ALERT_ESCALATION = timedelta(days=1)
"""An unacknowledged urgent alert goes to the safety contact after this long: not so soon that
the therapist has no time to read it, not so late that nobody acts the same day."""
MAX_NAME = 100
"""Characters in a name or alias: what a digest title and a Telegram line can carry."""

MAX_CRISIS_RESOURCES = 1500
"""Characters of a language's crisis resources: they go inside the client's crisis reply and the
therapist's urgent alert (with up to 1,000 characters of the client's words), and Telegram
refuses a message over 4,096 characters, which would leave a client in crisis with no answer."""

_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)


def _duration(option: str, text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"{option}: {exc}") from None


def retention_days(text: str) -> int:
    """`--retention`: whole days, at least one."""
    value = _duration("--retention", text)
    if value < _DAY:
        raise ValueError(
            f"--retention: {text.strip()} would delete every answer within the day; "
            "give whole days, at least 1d (e.g. 730d)"
        )
    if value % _DAY:
        raise ValueError(f"--retention: {text.strip()} is not whole days (e.g. 30d, 730d)")
    return value // _DAY


NO_NUDGE = 0
"""`nudge_after_hours` of a practice that sends no nudge (`--nudge-after off`)."""


def nudge_hours(text: str) -> int:
    """`--nudge-after`: whole hours, or `off` for no nudge at all."""
    if text.strip().lower() == "off":
        return NO_NUDGE
    return whole_hours("--nudge-after", text)


def whole_hours(option: str, text: str) -> int:
    """`--nudge-after` / `--expire-after`: whole hours, at least one."""
    value = _duration(option, text)
    if value % _HOUR:
        raise ValueError(f"{option}: {text.strip()} is not whole hours (e.g. 36h, 2d)")
    return value // _HOUR


def nudge_before_expiry(nudge_hours: int, expire_hours: int) -> None:
    """The one nudge must come while the check-in is still open (or be off)."""
    if nudge_hours != NO_NUDGE and nudge_hours >= expire_hours:
        nudge = format_duration(timedelta(hours=nudge_hours))
        expire = format_duration(timedelta(hours=expire_hours))
        raise ValueError(
            f"--nudge-after: {nudge} is not before --expire-after {expire}; "
            "the nudge must come while the check-in is open (or: --nudge-after off)"
        )


def digest_lead_minutes(text: str) -> int:
    """`--digest-lead`: whole minutes, up to `MAX_DIGEST_LEAD`."""
    value = _duration("--digest-lead", text)
    if value > MAX_DIGEST_LEAD:
        raise ValueError(f"--digest-lead: {text.strip()} is longer than the 7d maximum")
    return value // timedelta(minutes=1)


def alert_escalation_minutes(text: str) -> int:
    """`--alert-escalation`: whole minutes between `MIN_ALERT_ESCALATION` and
    `MAX_ALERT_ESCALATION`."""
    value = _duration("--alert-escalation", text)
    if not MIN_ALERT_ESCALATION <= value <= MAX_ALERT_ESCALATION:
        raise ValueError(
            f"--alert-escalation: {text.strip()} is outside 5m to 1d "
            "(the wait before an unacknowledged urgent alert goes to the safety contact)"
        )
    if value % timedelta(minutes=1):
        raise ValueError(f"--alert-escalation: {text.strip()} is not whole minutes (e.g. 2h)")
    return value // timedelta(minutes=1)


def display_name(option: str, text: str) -> str:
    """A name or alias as people will see it: invisible characters removed, spaces collapsed;
    refused when nothing visible is left or it is too long."""
    name = " ".join(visible_text(text).split())
    if not name:
        raise ValueError(f"{option}: give a name with visible characters")
    if len(name) > MAX_NAME:
        raise ValueError(f"{option}: at most {MAX_NAME} characters, got {len(name)}")
    return name


def crisis_resources(text: str) -> str:
    """`--crisis-resources`: what a client in crisis is given, as people will see it (nothing
    left: the built-in resources for that language); refused when it could not travel inside
    one Telegram message."""
    kept = visible_text(text).strip()
    if len(kept) > MAX_CRISIS_RESOURCES:
        raise ValueError(
            f"--crisis-resources: at most {MAX_CRISIS_RESOURCES} characters, got {len(kept)}"
        )
    return kept
