"""Withdrawal and rupture signals, the digest, and backtesting.

Pure functions over client histories: no Telegram, no database.
"""
