"""The conversation state: a plain JSON-serialisable dict the Telegram layer keeps in one column,
typed here (`State`) so that mypy checks every key a flow reads or writes.

    {"version": 1,
     "machine": "onboarding" | "idle" | "checkin" | "ended",
     "state":   the state of that machine (e.g. "consent", "asking", "stopped"),
     "zone":    a time zone waiting for the client's confirmation, or None,
     "dialog":  None or a command dialog shown on top of the machine ("confirm_stop",
                "confirm_delete", "language", "timezone", "timezone_confirm", "talk",
                "stop_reason"); when it ends the
                conversation returns to machine/state and re-asks what was pending there,
     "checkin": None or the open check-in: {"id", "items" (item ids in asking order),
                "index" (the item being asked), "answers" {item id: value or None},
                "moment" (`flows.moments`; "session" in states stored before moments),
                "measures" (the outcome measures it asks, `flows.measures`; [] before them)},
     "last_closed": the id of the last check-in that closed, or None. Check-in ids increase,
                so an OpenCheckin at or below it is a late duplicate and is ignored}

Flows never mutate the dict they are given: `load` returns a private copy, checked key by key:
stored states of any age are read this way, and one that does not fit is treated as missing.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, cast

from flows.moments import Moment, as_moment
from flows.timezones import is_zone

STATE_VERSION = 1
STATES: dict[str, frozenset[str]] = {
    # "new": not started yet (only a scheduler event has arrived without any stored state)
    "onboarding": frozenset({"new", "language", "consent", "timezone", "timezone_confirm"}),
    "idle": frozenset({"idle"}),
    "checkin": frozenset({"asking", "commenting"}),
    "ended": frozenset({"stopped", "declined", "erased"}),
}
MACHINES = frozenset(STATES)
DIALOGS = frozenset(
    {
        "confirm_stop",
        "confirm_delete",
        "language",
        "timezone",
        "timezone_confirm",
        "talk",
        "stop_reason",
    }
)

Machine = Literal["onboarding", "idle", "checkin", "ended"]


class CheckinData(TypedDict):
    """The open check-in inside the state."""

    id: int
    items: list[str]
    index: int
    answers: dict[str, int | None]
    moment: Moment
    measures: list[str]


class State(TypedDict):
    """The whole conversation state (see the module's docstring)."""

    version: int
    machine: Machine
    state: str
    zone: str | None
    dialog: str | None
    checkin: CheckinData | None
    last_closed: int | None


def new_state(machine: Machine, state: str) -> State:
    return {
        "version": STATE_VERSION,
        "machine": machine,
        "state": state,
        "zone": None,
        "dialog": None,
        "checkin": None,
        "last_closed": None,
    }


def _valid_checkin(checkin: Any) -> bool:
    if type(checkin) is not dict:
        return False
    items, answers = checkin.get("items"), checkin.get("answers")
    return (
        type(checkin.get("id")) is int
        and type(checkin.get("index")) is int
        and type(items) is list
        and all(type(i) is str for i in items)
        and type(answers) is dict
        and all(v is None or type(v) is int for v in answers.values())
    )


def _names(value: Any) -> list[str]:
    """The measures of a stored check-in: a list of names, [] for anything else."""
    if type(value) is list and all(type(name) is str for name in value):
        return list(value)
    return []


def load(raw: Any) -> State | None:
    """A private, checked copy of a stored state, or None if it is missing or unusable."""
    if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
        return None
    machine, name = raw.get("machine"), raw.get("state")
    if not isinstance(machine, str) or not isinstance(name, str):
        return None
    if machine not in MACHINES or name not in STATES[machine]:
        return None
    checkin = raw.get("checkin")
    if checkin is not None and not _valid_checkin(checkin):
        return None
    if machine == "checkin" and checkin is None:
        return None
    dialog, zone = raw.get("dialog"), raw.get("zone")
    if dialog is not None and (not isinstance(dialog, str) or dialog not in DIALOGS):
        return None
    if zone is not None and (not isinstance(zone, str) or not is_zone(zone)):
        return None
    if zone is None and "timezone_confirm" in (name, dialog):
        return None
    last_closed = raw.get("last_closed")
    if last_closed is not None and type(last_closed) is not int:
        return None
    if checkin is not None:
        checkin = CheckinData(
            id=checkin["id"],
            items=list(checkin["items"]),
            index=checkin["index"],
            answers=dict(checkin["answers"]),
            moment=as_moment(checkin.get("moment")),
            measures=_names(checkin.get("measures")),
        )
    return {
        "version": STATE_VERSION,
        "machine": cast(Machine, machine),
        "state": name,
        "zone": zone,
        "dialog": dialog,
        "checkin": checkin,
        "last_closed": last_closed,
    }


def open_checkin_id(raw: Any) -> int | None:
    """The check-in a stored state is in the middle of, if any."""
    state = load(raw)
    return None if state is None or state["checkin"] is None else state["checkin"]["id"]
