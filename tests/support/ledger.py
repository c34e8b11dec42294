"""Checks on the stored ledger, shared by the tests."""

from billgraph.db.trace import count_statements
from billgraph.ledger.audit import violations as ledger_violations

__all__ = ["count_statements", "ledger_violations"]
