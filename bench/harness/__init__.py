"""What bench.ledger, bench.live and bench.webhooks share: the PostgreSQL they run on, the
gateways under test, the seeded organization, the load, pgbench, CPU accounting and the
report."""
