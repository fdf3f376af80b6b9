"""How flows use `transitions`: machines are built once at import and shared by every client.

A machine here holds no client data. Each event wraps the client's state dict in a small model
object whose `state` attribute reads and writes that dict, and fires the trigger through the
machine's own event table. That skips `add_model` (which binds dozens of methods per model) and
keeps one event well under the per-event budget of the flow benchmark.
"""

from __future__ import annotations

from typing import Any

from transitions import Machine

from flows.turn import Turn


def build_machine(name: str, states: list[str], transitions: list[dict[str, Any]]) -> Machine:
    """A model-less machine: triggers are fired with `fire`, never bound to models."""
    return Machine(
        model=None,
        states=states,
        transitions=transitions,
        initial=states[0],
        auto_transitions=False,
        send_event=True,
        name=name,
    )


def fire(machine: Machine, model: object, trigger: str, **kwargs: Any) -> bool:
    """Fire `trigger` for `model`; False when no transition applied (a condition failed)."""
    return bool(machine.events[trigger].trigger(model, **kwargs))


def can_fire(machine: Machine, model: object, trigger: str) -> bool:
    """True if `trigger` has a transition out of the model's current state."""
    event = machine.events.get(trigger)
    return event is not None and bool(event.transitions.get(getattr(model, "state", "")))


class TurnModel:
    """The transitions model for one event; its `state` lives in the client's state dict."""

    __slots__ = ("turn",)

    def __init__(self, turn: Turn) -> None:
        self.turn = turn

    @property
    def state(self) -> str:
        return str(self.turn.state["state"])

    @state.setter
    def state(self, value: str) -> None:
        self.turn.state["state"] = value
