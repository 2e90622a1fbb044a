"""Benchmarks: `make bench` (or `python -m bench --help`). Figures, never pass/fail assertions.

Each benchmark reports ratios against a baseline measured in the same process; see
docs/benchmarks.md for the figures measured and the exact commands.
"""
