"""Benchmarks: ``python -m bench`` (or ``make bench``) prints the figures (see docs/benchmarks.md); not tests."""
