"""Evaluation and benchmark harness (``make eval``, ``make bench``); see benchmarks/README.md."""
