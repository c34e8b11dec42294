"""What subscriptions deliver: a wallet's state after one ledger entry."""

import strawberry

from billgraph.graphql.ledger.types import LedgerEntry
from billgraph.graphql.scalars import BigInt
from billgraph.graphql.wallets.types import Wallet
from billgraph.live.events import BalanceChanged


@strawberry.type(description="A committed ledger entry and the wallet right after it.")
class WalletBalanceChanged:
    wallet: Wallet = strawberry.field(description="The wallet as it was right after `entry`.")
    entry: LedgerEntry
    balance: BigInt
    version: BigInt = strawberry.field(
        description="The entry's sequence: ignore events older than one you hold."
    )

    @classmethod
    def from_event(cls, event: BalanceChanged) -> "WalletBalanceChanged":
        assert event.entry is not None  # the hub reads missing entries back
        return cls(
            wallet=Wallet.from_model(event.wallet),
            entry=LedgerEntry.from_model(event.entry),
            balance=BigInt(event.wallet.balance),
            version=BigInt(event.version),
        )


@strawberry.type(description="A debit took a wallet's balance below its low-balance threshold.")
class WalletLowBalance:
    wallet: Wallet = strawberry.field(description="The wallet as it was right after `entry`.")
    entry: LedgerEntry = strawberry.field(description="The debit that crossed the threshold.")
    balance: BigInt
    threshold: BigInt
    version: BigInt

    @classmethod
    def from_event(cls, event: BalanceChanged) -> "WalletLowBalance":
        assert event.entry is not None and event.wallet.low_balance_threshold is not None
        return cls(
            wallet=Wallet.from_model(event.wallet),
            entry=LedgerEntry.from_model(event.entry),
            balance=BigInt(event.wallet.balance),
            threshold=BigInt(event.wallet.low_balance_threshold),
            version=BigInt(event.version),
        )
