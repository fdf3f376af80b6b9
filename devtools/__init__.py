"""Development tools, not shipped in the wheel: the sandbox Bot API and the demo."""
