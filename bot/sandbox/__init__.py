"""Local stand-in for Telegram's Bot API, speaking the real wire protocol, for tests and the demo."""
