"""The root Subscription type: live balance changes and low-balance alerts over WebSocket."""

from collections.abc import AsyncGenerator

import strawberry

from billgraph.resolvers import subscriptions
from billgraph.schema.context import Info
from billgraph.schema.events import WalletBalanceChanged, WalletLowBalance


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="One event per committed ledger entry of the watched wallets, each wallet's "
        "in ledger order: `walletId` or `customerId`, or neither for every wallet of the "
        "organization. With `walletId`, `afterEntryId` (the last entry a client holds) first "
        "sends every later entry, then live ones, none twice. A subscriber that falls behind "
        "gets each wallet's latest state: `version` tells what it skipped."
    )
    async def wallet_balance_changed(
        self,
        info: Info,
        wallet_id: strawberry.ID | None = None,
        customer_id: strawberry.ID | None = None,
        after_entry_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[WalletBalanceChanged, None]:
        return await subscriptions.wallet_balance_changed(  # type: ignore[return-value]
            info, wallet_id=wallet_id, customer_id=customer_id, after_entry_id=after_entry_id
        )

    @strawberry.subscription(
        description="Fires once each time a debit takes a wallet's balance from at-or-above "
        "its lowBalanceThreshold to below it (every wallet of the organization, or of "
        "`customerId`)."
    )
    async def wallet_low_balance(
        self, info: Info, customer_id: strawberry.ID | None = None
    ) -> AsyncGenerator[WalletLowBalance, None]:
        return await subscriptions.wallet_low_balance(  # type: ignore[return-value]
            info, customer_id=customer_id
        )
