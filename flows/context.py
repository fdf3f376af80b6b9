"""Read-only facts about one client that the Telegram layer loads before feeding a flow."""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.i18n import DEFAULT_LANGUAGE, LANGUAGES
from flows.instruments import DEFAULT_INSTRUMENT, Instrument, load_instrument


def _default_instrument() -> Instrument:
    return load_instrument(DEFAULT_INSTRUMENT)


@dataclass(frozen=True, slots=True)
class ClientContext:
    """Everything a flow may know about the client besides its own state.

    `crisis_resources` is the practice's text for this language (shown verbatim); an empty one
    falls back to a generic "call your local emergency number". `therapist_alias` is how the bot
    names the therapist to the client. `on_its_way`: the data of check-in buttons the client
    does not see yet (the edit that asks their question is still being delivered).
    """

    language: str
    timezone: str | None = None
    instrument: Instrument = field(default_factory=_default_instrument)
    safety_item: bool = False
    crisis_resources: str = ""
    therapist_alias: str = ""
    telegram_language: str | None = None
    on_its_way: frozenset[str] = frozenset()

    @property
    def lang(self) -> str:
        """`language` if we have a catalog for it, else English."""
        return self.language if self.language in LANGUAGES else DEFAULT_LANGUAGE
