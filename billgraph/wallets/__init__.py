"""Wallets: one per customer and currency."""
