"""Benchmarks behind ``tools/bench.py``: ratios measured in one process, never absolute timings in tests."""
