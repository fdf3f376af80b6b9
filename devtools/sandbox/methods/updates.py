"""Receiving updates: getUpdates long polling, or a webhook (set, delete, inspect)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from devtools.sandbox.errors import bad_request, conflict
from devtools.sandbox.methods.common import Described, MethodContext
from devtools.sandbox.params import Params
from devtools.sandbox.world import WebhookConfig

WEBHOOK_CONFLICT = (
    "can't use getUpdates method while webhook is active; use deleteWebhook to delete the "
    "webhook first"
)
POLL_CONFLICT = (
    "terminated by other getUpdates request; make sure that only one bot instance is running"
)
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_MAX_POLL_SECONDS = 50.0


async def get_updates(ctx: MethodContext, p: Params) -> list[dict[str, Any]]:
    """Confirm by offset, then wait up to `timeout` s for anything new; one poller at a time."""
    bot = ctx.bot
    if bot.webhook is not None:
        raise conflict(WEBHOOK_CONFLICT)
    offset = p.integer("offset")
    limit = p.integer("limit")
    limit = 100 if limit is None else min(100, max(1, limit))
    timeout = min(_MAX_POLL_SECONDS, max(0.0, p.number("timeout") or 0.0))
    allowed = p.nested("allowed_updates", "can't parse allowed updates JSON object")
    if allowed is not None:
        if not isinstance(allowed, list):
            raise bad_request("can't parse allowed updates JSON object")
        bot.updates.set_allowed(allowed)
    if offset is not None:
        bot.updates.confirm(offset)
    bot.poll_generation += 1
    generation = bot.poll_generation
    world = ctx.world
    world.notify()  # an older poll still waiting must end now with a conflict

    def ready() -> bool:
        return (
            len(bot.updates) > 0
            or world.closing
            or bot.poll_generation != generation
            or bot.webhook is not None
        )

    if timeout > 0:
        await world.signal.until(ready, timeout)
    if bot.poll_generation != generation:
        raise conflict(POLL_CONFLICT)
    if bot.webhook is not None:
        raise conflict(WEBHOOK_CONFLICT)
    updates = bot.updates.peek(limit)
    bot.updates.record_delivery(updates)
    return updates


async def set_webhook(ctx: MethodContext, p: Params) -> Described:
    """Like Telegram, except that plain http and any port are accepted, for local receivers."""
    url = (p.string("url") or "").strip()
    if p.boolean("drop_pending_updates"):
        ctx.bot.updates.clear()
    if not url:
        return _remove_webhook(ctx)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = p.string("secret_token")
    if secret is not None and not _SECRET.match(secret):
        raise bad_request("secret token contains unallowed characters")
    max_connections = p.integer("max_connections") or 40
    if not 1 <= max_connections <= 100:
        raise bad_request("bad webhook: max_connections must be between 1 and 100")
    allowed = p.nested("allowed_updates", "can't parse allowed updates JSON object")
    if allowed is not None:
        ctx.bot.updates.set_allowed(allowed)
    previous = ctx.bot.webhook
    ctx.bot.webhook = WebhookConfig(url, secret or None, max_connections)
    ctx.world.notify()
    if previous is not None and previous.url == url:
        return Described(True, "Webhook is already set")
    return Described(True, "Webhook was set")


def _remove_webhook(ctx: MethodContext) -> Described:
    if ctx.bot.webhook is None:
        return Described(True, "Webhook is already deleted")
    ctx.bot.webhook = None
    ctx.world.notify()
    return Described(True, "Webhook was deleted")


async def delete_webhook(ctx: MethodContext, p: Params) -> Described:
    if p.boolean("drop_pending_updates"):
        ctx.bot.updates.clear()
    return _remove_webhook(ctx)


async def get_webhook_info(ctx: MethodContext, p: Params) -> dict[str, Any]:
    hook = ctx.bot.webhook
    info: dict[str, Any] = {
        "url": hook.url if hook else "",
        "has_custom_certificate": False,
        "pending_update_count": ctx.bot.pending_update_count,
    }
    if hook is None:
        return info
    info["max_connections"] = hook.max_connections
    if hook.last_error_date is not None:
        info["last_error_date"] = hook.last_error_date
        info["last_error_message"] = hook.last_error_message or ""
    if ctx.bot.updates.allowed_updates:
        info["allowed_updates"] = list(ctx.bot.updates.allowed_updates)
    return info
