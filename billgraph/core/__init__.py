"""Cross-cutting rules: business errors, input checks, the unit of work."""
