"""Conversations as pure state machines, instruments and message catalogs.

Pure: imports neither telegram nor sqlalchemy.
"""
