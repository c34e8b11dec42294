"""The ledger: append-only entries that move money on wallets."""
