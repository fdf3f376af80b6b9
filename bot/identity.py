"""Asking Telegram who the bot is, for commands that run without it (`rapport invite` before the
bot has ever started): see `app.runtime.Runtime.ask_bot_username`."""

from __future__ import annotations

from app.config import Settings


async def ask_username(settings: Settings) -> str | None:
    """getMe with the configured token; None without one, or when Telegram cannot be asked now."""
    if settings.telegram_token is None:
        return None
    # Imported here: most commands never ask, and PTB is slow to import for a one-line command.
    from telegram import Bot
    from telegram.error import TelegramError

    bot = Bot(
        settings.token(),
        base_url=settings.telegram_api_url,
        base_file_url=settings.api_file_url,
    )
    try:
        async with bot:
            return bot.username
    except (TelegramError, OSError):
        return None
