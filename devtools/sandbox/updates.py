"""A bot's pending updates with Telegram's getUpdates semantics.

Updates stay queued until confirmed: a getUpdates call with `offset` forgets every update whose
id is below it, a negative offset keeps only the last updates. `allowed_updates` persists between
calls (and from setWebhook) and filters updates as they are created, as on Telegram.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from devtools.sandbox.wire import OPT_IN_UPDATES


class UpdateQueue:
    """Pending updates of one bot, with increasing update ids."""

    def __init__(self, first_update_id: int | None = None) -> None:
        self._entries: deque[dict[str, Any]] = deque()
        self._next_id = (
            first_update_id if first_update_id is not None else random.randint(10**8, 9 * 10**8)
        )
        self.allowed_updates: list[str] = []
        self.delivered_ids: list[int] = []

    def __len__(self) -> int:
        return len(self._entries)

    def wants(self, kind: str) -> bool:
        if not self.allowed_updates:
            return kind not in OPT_IN_UPDATES
        return kind in self.allowed_updates

    def push(
        self, kind: str, payload: dict[str, Any], *, duplicate: bool = False
    ) -> dict[str, Any] | None:
        """Queue an update of `kind` (e.g. "message"); None if the bot's filter drops it.

        With `duplicate` the same update (same update_id) is queued twice, as Telegram sometimes
        delivers an update again: bots must be idempotent per update_id.
        """
        if not self.wants(kind):
            return None
        update = {"update_id": self._next_id, kind: payload}
        self._next_id += 1
        self._entries.append(update)
        if duplicate:
            self._entries.append(update)
        return update

    def confirm(self, offset: int) -> None:
        """getUpdates' offset: positive forgets earlier ids, negative keeps the last |offset|."""
        if offset < 0:
            keep = -offset
            while len(self._entries) > keep:
                self._entries.popleft()
            return
        while self._entries and self._entries[0]["update_id"] < offset:
            self._entries.popleft()

    def peek(self, limit: int) -> list[dict[str, Any]]:
        return [self._entries[i] for i in range(min(limit, len(self._entries)))]

    def first(self) -> dict[str, Any] | None:
        return self._entries[0] if self._entries else None

    def pop_first(self) -> None:
        """Drop the head after a successful webhook delivery."""
        if self._entries:
            self._entries.popleft()

    def remove(self, update: dict[str, Any]) -> None:
        """Drop one queued copy of `update` (the very object) after a successful delivery that
        was not of the head: webhook deliveries in parallel succeed in any order."""
        for index, entry in enumerate(self._entries):
            if entry is update:
                del self._entries[index]
                return

    def clear(self) -> None:
        self._entries.clear()

    def set_allowed(self, allowed: Any) -> None:
        """Replace the persistent filter; unknown names are ignored like Telegram does."""
        if isinstance(allowed, list):
            self.allowed_updates = [name for name in allowed if isinstance(name, str)]

    def record_delivery(self, updates: list[dict[str, Any]]) -> None:
        self.delivered_ids.extend(update["update_id"] for update in updates)
