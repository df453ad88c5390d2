"""Benchmarks of bulkput beside its peers: ``python -m benchmarks --help`` (see README.md)."""
