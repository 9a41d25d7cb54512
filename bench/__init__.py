"""Benchmarks of tembo-dispatch against its peers: `make bench-ingest`, `make bench-burst`.

Benchmarks, not tests: they measure and report, and `tests/e2e/test_bench.py` runs each one
once at a tiny size so they keep working. All traffic stays on 127.0.0.1.
"""
