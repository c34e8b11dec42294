"""Live subscriptions: check the arguments, then stream events from this process's hub.

Arguments are checked before the stream starts, so a bad or unknown id answers the subscribe
message with an error. Another organization's ids behave exactly like ids that do not exist.
Every event is resolved with fresh loaders: a socket lives for hours.
"""

from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractContextManager
from typing import TypeVar

import strawberry
from aiodataloader import DataLoader
from graphql import GraphQLError

from billgraph.core.errors import ValidationError
from billgraph.graphql.context import Context, Info
from billgraph.graphql.errors import graphql_error
from billgraph.graphql.live.types import (
    InvoiceUpdated,
    SubscriptionStatusChanged,
    WalletBalanceChanged,
    WalletLowBalance,
)
from billgraph.graphql.node import db_id_of
from billgraph.live import repository
from billgraph.live.billing import (
    BillingEnded,
    BillingSubscriber,
    InvoiceDelivery,
    StatusDelivery,
    Topic,
)
from billgraph.live.events import BalanceChanged
from billgraph.live.hub import Subscriber, SubscriptionEnded
from billgraph.wallets.repository import WalletRow

T = TypeVar("T")
R = TypeVar("R")

# Entries read per query while catching a resumed subscription up.
CATCH_UP_PAGE = 100


@strawberry.type
class SubscriptionRoot:
    """Named so the billing Subscription type can have its name; clients' operations are the
    same `subscription { ... }`."""

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
        return await wallet_balance_changed(
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
        return await wallet_low_balance(info, customer_id=customer_id)

    @strawberry.subscription(
        description="One event per committed status change of the organization's "
        "subscriptions (or `customerId`'s), a new subscription included (previousStatus "
        "null), from whichever process made it (a `billgraph bill` run on PostgreSQL too). "
        "A subscriber that falls behind gets one change per subscription spanning those it "
        "skipped."
    )
    async def subscription_status_changed(
        self, info: Info, customer_id: strawberry.ID | None = None
    ) -> AsyncGenerator[SubscriptionStatusChanged, None]:
        subscriber = await _billing_subscriber(info, Topic.SUBSCRIPTION_STATUS, customer_id)

        def payload(delivery: StatusDelivery | InvoiceDelivery) -> SubscriptionStatusChanged:
            assert isinstance(delivery, StatusDelivery)
            return SubscriptionStatusChanged.from_delivery(delivery)

        return _billing_stream(info.context, subscriber, payload)

    @strawberry.subscription(
        description="One event per committed change of an invoice of the organization (or "
        "of `customerId`): issued, an attempt started or failed, paid, voided. The invoice is "
        "read when the event arrives: several changes in quick succession may show as one."
    )
    async def invoice_updated(
        self, info: Info, customer_id: strawberry.ID | None = None
    ) -> AsyncGenerator[InvoiceUpdated, None]:
        subscriber = await _billing_subscriber(info, Topic.INVOICE, customer_id)

        def payload(delivery: StatusDelivery | InvoiceDelivery) -> InvoiceUpdated:
            assert isinstance(delivery, InvoiceDelivery)
            return InvoiceUpdated.from_delivery(delivery)

        return _billing_stream(info.context, subscriber, payload)


async def wallet_balance_changed(
    info: Info,
    *,
    wallet_id: strawberry.ID | None,
    customer_id: strawberry.ID | None,
    after_entry_id: strawberry.ID | None,
) -> AsyncGenerator[WalletBalanceChanged, None]:
    context = info.context
    if wallet_id is not None and customer_id is not None:
        raise _bad_input("Give walletId or customerId, not both.")
    if after_entry_id is not None and wallet_id is None:
        raise _bad_input("afterEntryId resumes one wallet: give its walletId too.")
    wallet = await _wallet(context, wallet_id) if wallet_id is not None else None
    customer_db_id = await _customer(context, customer_id) if customer_id is not None else None
    after = None
    if after_entry_id is not None:
        assert wallet is not None
        after = await _entry_sequence(context, after_entry_id, wallet.id)
    hub = context.hub
    assert hub is not None
    subscriber = hub.subscribe(
        context.organization_id,
        wallet_id=wallet.id if wallet is not None else None,
        customer_id=customer_db_id,
    )
    catch_up = (
        _catch_up(context, wallet, after) if wallet is not None and after is not None else None
    )
    return _stream(context, subscriber, WalletBalanceChanged.from_event, catch_up)


async def wallet_low_balance(
    info: Info, *, customer_id: strawberry.ID | None
) -> AsyncGenerator[WalletLowBalance, None]:
    context = info.context
    customer_db_id = await _customer(context, customer_id) if customer_id is not None else None
    hub = context.hub
    assert hub is not None
    subscriber = hub.subscribe(
        context.organization_id, customer_id=customer_db_id, low_balance_only=True
    )
    return _stream(context, subscriber, WalletLowBalance.from_event, None)


async def _stream(
    context: Context,
    subscription: AbstractContextManager[Subscriber],
    payload: Callable[[BalanceChanged], T],
    catch_up: "Callable[[Subscriber], AsyncGenerator[BalanceChanged, None]] | None",
) -> AsyncGenerator[T, None]:
    # Subscribed before catching up: whatever commits meanwhile is queued, and the subscriber
    # drops what the catch-up already sent.
    with subscription as subscriber:
        if catch_up is not None:
            async for event in catch_up(subscriber):
                context.fresh_loaders()
                yield payload(event)
        while True:
            try:
                event = await subscriber.next()
            except SubscriptionEnded as ended:
                if ended.code is None:  # the server is stopping: complete the stream
                    return
                raise graphql_error(str(ended), ended.code) from None
            context.fresh_loaders()
            yield payload(event)


async def _billing_subscriber(
    info: Info, topic: Topic, customer_id: strawberry.ID | None
) -> AbstractContextManager[BillingSubscriber]:
    context = info.context
    customer_db_id = await _customer(context, customer_id) if customer_id is not None else None
    hub = context.hub
    assert hub is not None
    return hub.subscribe_billing(topic, context.organization_id, customer_id=customer_db_id)


async def _billing_stream(
    context: Context,
    subscription: AbstractContextManager[BillingSubscriber],
    payload: Callable[[StatusDelivery | InvoiceDelivery], T],
) -> AsyncGenerator[T, None]:
    with subscription as subscriber:
        while True:
            try:
                delivery = await subscriber.next()
            except BillingEnded as ended:
                if ended.code is None:  # the server is stopping: complete the stream
                    return
                raise graphql_error(str(ended), ended.code) from None
            context.fresh_loaders()
            yield payload(delivery)


def _catch_up(
    context: Context, wallet: WalletRow, after: int
) -> "Callable[[Subscriber], AsyncGenerator[BalanceChanged, None]]":
    async def entries(subscriber: Subscriber) -> AsyncGenerator[BalanceChanged, None]:
        sequence = after
        subscriber.delivered_up_to(wallet.id, sequence)
        while True:
            async with context.database.sessions() as session:
                page = await repository.entries_after(
                    session, wallet.id, sequence, upto=None, limit=CATCH_UP_PAGE
                )
            if not page:
                return
            for entry in page:
                subscriber.delivered_up_to(wallet.id, entry.sequence)
                yield BalanceChanged.of(wallet, entry)
            sequence = page[-1].sequence

    return entries


async def _owned(
    loader: "DataLoader[int, R | None]",
    global_id: strawberry.ID,
    type_name: str,
    field: str,
    not_found: str,
) -> R:
    """The row `global_id` names in the caller's organization (the loaders are confined to
    it), or NOT_FOUND: another organization's id is answered like an unknown one."""
    try:
        db_id = db_id_of(global_id, type_name, field)
    except ValidationError as exc:
        raise _bad_input(f"{field}: {exc.message}") from None
    row = await loader.load(db_id) if db_id is not None else None
    if row is None:
        raise _not_found(not_found)
    return row


async def _wallet(context: Context, wallet_id: strawberry.ID) -> WalletRow:
    return await _owned(
        context.loaders.wallet, wallet_id, "Wallet", "walletId", "Wallet not found."
    )


async def _customer(context: Context, customer_id: strawberry.ID) -> int:
    row = await _owned(
        context.loaders.customer, customer_id, "Customer", "customerId", "Customer not found."
    )
    return int(row.id)


async def _entry_sequence(context: Context, entry_id: strawberry.ID, wallet_db_id: int) -> int:
    not_found = "Ledger entry not found in this wallet."
    loader = context.loaders.ledger_entry
    row = await _owned(loader, entry_id, "LedgerEntry", "afterEntryId", not_found)
    if row.wallet_id != wallet_db_id:
        raise _not_found(not_found)
    return int(row.sequence)


def _bad_input(message: str) -> GraphQLError:
    return graphql_error(message, "BAD_USER_INPUT")


def _not_found(message: str) -> GraphQLError:
    return graphql_error(message, "NOT_FOUND")
