"""Benchmarks: each prints a table and writes bench/results.json; never part of `make test`."""
