"""Benchmark scripts whose numbers are in docs/ (run each as `python benchmarks/NAME.py`)."""
