"""The use cases: what Rapport does, whichever front door asked (Telegram, the CLI, the console)."""
