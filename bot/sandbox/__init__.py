"""A local stand-in for Telegram's Bot API, speaking its wire protocol, for tests and demos."""
