"""Wallets: one per customer and currency, opened at customer creation or on first credit."""

from billgraph.core import validation
from billgraph.core.errors import NotFoundError
from billgraph.core.unit import UnitOfWork
from billgraph.db.models import Wallet
from billgraph.wallets import repository


async def set_low_balance_threshold(
    unit: UnitOfWork, organization_id: int, wallet_id: int, threshold: int | None
) -> Wallet:
    """Set (or with None clear) the balance under which the wallet raises low-balance events.

    A live event fires when a debit takes the balance from at-or-above the threshold to below
    it, not when the threshold itself moves above the balance. Raises ValidationError,
    NotFoundError (also for another organization's wallet).
    """
    checked = validation.threshold(threshold, "lowBalanceThreshold")
    wallet = await repository.set_threshold(unit.session, organization_id, wallet_id, checked)
    if wallet is None:
        raise NotFoundError("Wallet not found.")
    return wallet
