"""The baseline for the pipeline benchmark: a bare PTB bot that sends every text straight back.

It is stock PTB: PTB's own HTTP requests (httpx, the ApplicationBuilder's defaults), PTB's
long polling and Rapport's update concurrency, and nothing else: no database, no outbox.
Rapport's bot sends through `bot.wire` (the same request settings, on aiohttp, much less CPU
per call); that difference is part of what the benchmarks compare, not something the baseline
is given. With ECHO_BOT_WIRE=1 it sends through `bot.wire` too, so that a run can also say how
far Rapport is from a bare bot on the same transport. Run by the benchmarks, never on its own in
production. The token comes from ECHO_BOT_TOKEN.
"""

from __future__ import annotations

import argparse
import os
import signal

from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is not None and message.text is not None:
        await context.bot.send_message(message.chat_id, message.text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--api-url", required=True, help="Bot API base, e.g. http://127.0.0.1:8081/bot"
    )
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    builder = ApplicationBuilder().token(os.environ["ECHO_BOT_TOKEN"]).base_url(args.api_url)
    if os.environ.get("ECHO_BOT_WIRE") == "1":
        from bot.wire import BotApiRequest

        builder = builder.request(BotApiRequest()).get_updates_request(
            BotApiRequest(connection_pool_size=1, read_timeout=40)
        )
    else:
        builder = builder.get_updates_read_timeout(40)
    app = builder.concurrent_updates(args.concurrency).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    app.run_polling(
        poll_interval=0.0,
        timeout=10,
        allowed_updates=["message"],
        stop_signals=(signal.SIGINT, signal.SIGTERM),
    )


if __name__ == "__main__":
    main()
