"""Customers: created with a wallet, updated, soft-deleted."""
