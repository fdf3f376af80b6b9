"""Rapport's Telegram side: updates in, replies out, within Telegram's limits."""
