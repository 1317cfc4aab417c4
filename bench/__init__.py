"""Benchmarks of Countersign against its physical limits (``python -m bench.run``; see BENCHMARKS.md)."""
