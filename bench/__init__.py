"""Benchmarks: standalone scripts (`*_bench.py`) and the helpers they share."""
