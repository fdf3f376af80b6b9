"""The time-zone step, shared by onboarding and the /timezone command.

Suggested zones for the client's language come as buttons showing each zone's current local time,
which is often the quickest way to recognise one's own; "another time zone" asks the client to
type a city or an offset. Whatever is chosen is confirmed back with the local time before it is
saved.
"""

from __future__ import annotations

from flows.i18n import DEFAULT_LANGUAGE
from flows.intents import Button, Keyboard
from flows.keyboards import NO, OTHER_ZONE, YES
from flows.timezones import SUGGESTED_ZONES, display_zone, is_zone, local_time
from flows.turn import Turn

ZONES_PER_ROW = 2


def ask_text(turn: Turn) -> str:
    return turn.text("timezone.ask")


def ask_keyboard(turn: Turn, owner: str) -> Keyboard:
    zones = SUGGESTED_ZONES.get(turn.lang, SUGGESTED_ZONES[DEFAULT_LANGUAGE])
    buttons = [
        Button(
            turn.text(
                "timezone.button", city=turn.text(f"zone.{zone}"), time=local_time(zone, turn.at)
            ),
            f"{owner}:tz:{zone}",
        )
        for zone in zones
    ]
    rows = [tuple(buttons[i : i + ZONES_PER_ROW]) for i in range(0, len(buttons), ZONES_PER_ROW)]
    rows.append((Button(turn.text("button.other_zone"), f"{owner}:tz:{OTHER_ZONE}"),))
    return tuple(rows)


def ask(turn: Turn, owner: str, *, hint_key: str | None = None) -> None:
    """Offer the suggested zones (after a hint, when the client's text was not a zone)."""
    text = turn.text(hint_key) if hint_key else ask_text(turn)
    turn.say(text, ask_keyboard(turn, owner))


def ask_typing(turn: Turn) -> None:
    turn.say(turn.text("timezone.ask_other"))


def confirm_text(turn: Turn, zone: str, *, preset: bool = False) -> str:
    return turn.text(
        "timezone.preset" if preset else "timezone.confirm",
        time=local_time(zone, turn.at),
        zone=display_zone(zone),
    )


def confirm_keyboard(turn: Turn, owner: str) -> Keyboard:
    return (
        (
            Button(turn.text("button.yes"), f"{owner}:tzok:{YES}"),
            Button(turn.text("button.choose_again"), f"{owner}:tzok:{NO}"),
        ),
    )


def confirm(turn: Turn, owner: str, zone: str, *, preset: bool = False) -> None:
    turn.say(confirm_text(turn, zone, preset=preset), confirm_keyboard(turn, owner))


def hint(turn: Turn, owner: str, step: str) -> None:
    """The nudge when a message did not answer the time-zone step `step` (nothing for a step
    of another kind)."""
    if step == "timezone":
        ask(turn, owner, hint_key="timezone.not_found")
    elif step == "timezone_confirm":
        turn.say(turn.text("timezone.hint"), confirm_keyboard(turn, owner))


def tapped_zone(value: str) -> str | None:
    """The zone in a zone button's data, if it is one we can load."""
    return value if value != OTHER_ZONE and is_zone(value) else None


def zone_label(turn: Turn, zone: str) -> str:
    """How a chosen zone is echoed back: the button's city name if it was a suggestion."""
    if zone in SUGGESTED_ZONES.get(turn.lang, ()):
        return turn.text(f"zone.{zone}")
    return display_zone(zone)
