"""Conversations as pure state machines, instruments and message catalogs (no telegram, no sqlalchemy)."""
