"""The throwaway PostgreSQL server of the tests: the benchmarks' own (bench/harness/postgres.py)."""

from bench.harness.postgres import PostgresServer, PostgresUnavailable, find_bindir, start

__all__ = ["PostgresServer", "PostgresUnavailable", "find_bindir", "start"]
