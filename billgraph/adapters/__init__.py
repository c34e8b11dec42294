"""Payment providers behind one small Protocol (base.py), one module per provider. Adapters
speak to their provider only: no SQL, no domain rules (import-linter keeps it so)."""
