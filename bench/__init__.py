"""Benchmarks of aqua-metrics (issue 5): run them all with `python bench/run.py [--quick]`."""
