"""Benchmarks: ``python -m bench`` (or ``make bench``) prints the figures; nothing here is a test."""
