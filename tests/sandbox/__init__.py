"""Tests of the sandbox Bot API server, driven through the real PTB client."""
