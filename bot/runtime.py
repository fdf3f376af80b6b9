"""What only the Telegram side of a running bot holds, beside the use cases' `app.runtime.Runtime`:
the door that stops floods, the strangers told lately, Telegram's send limits, and the queue of
replies sent directly. They live in memory, on wall time, and mean nothing to the CLI or the web."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.clock import SystemClock
from app.runtime import Runtime
from bot.direct import DirectReplies
from bot.flood import InboundThrottle, Recently
from bot.ratelimit import SendLimiter


@dataclass
class TelegramSide:
    rt: Runtime
    # Floods stopped at the door, per sender, before they reach the database.
    door: InboundThrottle = field(default_factory=InboundThrottle)
    # Strangers told recently that the bot is for invited people: not told again for a while.
    strangers_told: Recently = field(default_factory=Recently)
    # Telegram's sending limits, shared by the outbox sender and replies sent directly.
    limiter: SendLimiter = field(init=False)
    # The queue of replies sent directly (strangers, groups, refusals), while the bot runs.
    direct: DirectReplies | None = None

    def __post_init__(self) -> None:
        self.limiter = SendLimiter(self.rt.settings.send_rate, self.rt.settings.chat_send_rate)

    @classmethod
    def create(cls, rt: Runtime) -> TelegramSide:
        real = isinstance(rt.clock, SystemClock)  # see `bot.flood` for why simulated time is open
        return cls(
            rt,
            door=InboundThrottle() if real else InboundThrottle.open(),
            strangers_told=Recently() if real else Recently(window=0.0),
        )
