"""Returning to whatever a command or dialog interrupted."""

from __future__ import annotations

from flows import checkin, onboarding
from flows.turn import Turn


def resume(turn: Turn) -> None:
    """Ask again what was pending: the check-in's current item, or the onboarding step."""
    if turn.machine == "checkin":
        checkin.reask(turn)
    elif turn.machine == "onboarding":
        onboarding.reprompt(turn)
