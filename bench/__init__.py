"""Aidline benchmarks: ``make bench`` (``python -m bench.run``). Never part of ``make test``."""
