"""Withdrawal and rupture signals, the digest, and backtesting: pure functions over client histories."""
