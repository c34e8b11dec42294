"""Payment provider adapters (sandbox, Stripe, Toss Payments), one module per provider behind
one Protocol, with no SQL. None is wired yet: the ledger graph needs no provider."""
