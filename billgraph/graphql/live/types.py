"""What subscriptions deliver: a wallet's state after one ledger entry, a subscription's
status change, an invoice's update."""

import strawberry

from billgraph.graphql.billing.enums import SubscriptionStatus
from billgraph.graphql.billing.types import Invoice, Subscription, SubscriptionEvent
from billgraph.graphql.ledger.types import LedgerEntry
from billgraph.graphql.scalars import BigInt
from billgraph.graphql.wallets.types import Wallet
from billgraph.live.billing import InvoiceDelivery, StatusDelivery
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


@strawberry.type(description="A subscription's status changed, or it was created.")
class SubscriptionStatusChanged:
    subscription: Subscription = strawberry.field(
        description="The subscription as committed when the change reached this gateway (a "
        "later change may already show)."
    )
    previous_status: SubscriptionStatus | None = strawberry.field(
        description="null: the subscription was created with `status`."
    )
    status: SubscriptionStatus
    event: SubscriptionEvent | None = strawberry.field(
        description="The event that recorded the change (created, activated, past_due, "
        "suspended, canceled); null when none did."
    )

    @classmethod
    def from_delivery(cls, delivery: StatusDelivery) -> "SubscriptionStatusChanged":
        change = delivery.change
        previous = change.previous_status
        return cls(
            subscription=Subscription.from_model(delivery.subscription),
            previous_status=SubscriptionStatus(previous) if previous is not None else None,
            status=SubscriptionStatus(change.status),
            event=SubscriptionEvent.from_model(delivery.event) if delivery.event else None,
        )


@strawberry.type(description="An invoice was issued, or its status, amounts or attempts changed.")
class InvoiceUpdated:
    invoice: Invoice = strawberry.field(
        description="The invoice as committed when the update reached this gateway."
    )

    @classmethod
    def from_delivery(cls, delivery: InvoiceDelivery) -> "InvoiceUpdated":
        return cls(invoice=Invoice.from_model(delivery.invoice))
