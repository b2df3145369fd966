"""Benchmarks of parasol_hybrid: each figure is the API (or a job) against the bare numba limit.

Run them with ``scripts/bench [--json] [--quick] [names...]`` (or ``python -m benchmarks``).
"""
