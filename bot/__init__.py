"""Rapport: the Telegram side, CLI, scheduler heartbeat, outbox sender and the sandbox Bot API."""
