"""CheckoutSession, its payment error and refunds, and a customer's sessions connection."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry

from billgraph.checkout import service
from billgraph.db import models
from billgraph.graphql.checkout.enums import (
    CheckoutMode,
    CheckoutStatus,
    PaymentProvider,
    RefundSource,
    RefundStatus,
)
from billgraph.graphql.checkout.loaders import SessionPageKey
from billgraph.graphql.context import Info
from billgraph.graphql.currencies import Currency
from billgraph.graphql.ledger.types import LedgerEntry
from billgraph.graphql.node import Node, load_existing, node_loader, to_global_id
from billgraph.graphql.pagination import Connection, build_connection, decode_cursor, page_size
from billgraph.graphql.scalars import BigInt

if TYPE_CHECKING:
    from billgraph.graphql.billing.types import Subscription
    from billgraph.graphql.customers.types import Customer

CHECKOUT_CURSOR = "checkout"


@strawberry.type(description="Why the last attempt to pay a session failed.")
class PaymentError:
    code: str = strawberry.field(
        description="Provider-neutral: card_declined, insufficient_funds, expired_card, "
        "authentication_required, ..."
    )
    message: str


@strawberry.type(
    description="Money given back from a checkout session: refunded at the provider, then taken "
    "from the wallet, never below zero."
)
class Refund(Node):
    db_id: strawberry.Private[int]
    amount: BigInt = strawberry.field(description="Given back at the provider.")
    wallet_debited: BigInt = strawberry.field(description="Taken from the wallet.")
    shortfall: BigInt = strawberry.field(
        description="What the wallet no longer held (the customer had spent it): amount - "
        "walletDebited once SUCCEEDED."
    )
    status: RefundStatus
    source: RefundSource
    reason: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.Refund) -> "Refund":
        return cls(
            id=to_global_id("Refund", row.id),
            db_id=row.id,
            amount=BigInt(row.amount),
            wallet_debited=BigInt(row.wallet_debited),
            shortfall=BigInt(row.shortfall),
            status=RefundStatus(row.status),
            source=RefundSource(row.source),
            reason=row.reason,
            created_at=row.created_at,
        )


@strawberry.type(description="The customer's id at a payment provider.")
class ProviderCustomer:
    provider: PaymentProvider
    provider_customer_id: str = strawberry.field(
        description="Stripe's cus_..., the Toss customerKey."
    )

    @classmethod
    def from_model(cls, row: models.ProviderCustomer) -> "ProviderCustomer":
        return cls(
            provider=PaymentProvider(row.provider),
            provider_customer_id=row.provider_customer_id,
        )


@strawberry.type(
    description="A customer's payment at a provider that tops up a wallet (TOP_UP), or the "
    "collection of a subscription's payment method (SUBSCRIPTION)."
)
class CheckoutSession(Node):
    db_id: strawberry.Private[int]
    customer_db_id: strawberry.Private[int]
    subscription_db_id: strawberry.Private[int | None]
    ledger_entry_db_id: strawberry.Private[int | None]
    provider: PaymentProvider
    mode: CheckoutMode
    status: CheckoutStatus = strawberry.field(
        description="An OPEN session past its expiresAt is EXPIRED."
    )
    amount: BigInt = strawberry.field(
        description="In the currency's minor unit. SUBSCRIPTION: what the subscription's open "
        "invoice owed when the session opened (0 if nothing)."
    )
    currency: Currency
    url: str = strawberry.field(description="Where to send the customer to pay.")
    success_url: str
    cancel_url: str
    provider_session_id: str = strawberry.field(
        description="The provider's id: Stripe's cs_..., the Toss orderId, the sandbox's own."
    )
    expires_at: datetime
    created_at: datetime
    completed_at: datetime | None
    last_payment_error: PaymentError | None = strawberry.field(
        description="The last declined attempt; the session stays OPEN for another. A "
        "SUBSCRIPTION session COMPLETE with an error saved the payment method, whose first "
        "charge was declined (the invoice stays open)."
    )

    @classmethod
    def from_model(cls, row: models.CheckoutSession) -> "CheckoutSession":
        error = (
            None
            if row.last_payment_error_code is None
            else PaymentError(
                code=row.last_payment_error_code, message=row.last_payment_error_message or ""
            )
        )
        return cls(
            id=to_global_id("CheckoutSession", row.id),
            db_id=row.id,
            customer_db_id=row.customer_id,
            subscription_db_id=row.subscription_id,
            ledger_entry_db_id=row.ledger_entry_id,
            provider=PaymentProvider(row.provider),
            mode=CheckoutMode(row.mode),
            status=service.effective_status(row),
            amount=BigInt(row.amount),
            currency=Currency(row.currency),
            url=row.url,
            success_url=row.success_url,
            cancel_url=row.cancel_url,
            provider_session_id=row.provider_session_id,
            expires_at=row.expires_at,
            created_at=row.created_at,
            completed_at=row.completed_at,
            last_payment_error=error,
        )

    @strawberry.field
    async def customer(
        self, info: Info
    ) -> Annotated["Customer", strawberry.lazy("billgraph.graphql.customers.types")]:
        return cast("Customer", await load_existing(info, "Customer", self.customer_db_id))

    @strawberry.field(
        description="SUBSCRIPTION: the subscription whose payment method the session collects; "
        "null for a TOP_UP."
    )
    async def subscription(
        self, info: Info
    ) -> Annotated["Subscription", strawberry.lazy("billgraph.graphql.billing.types")] | None:
        if self.subscription_db_id is None:
            return None
        return cast(
            "Subscription", await load_existing(info, "Subscription", self.subscription_db_id)
        )

    @strawberry.field(description="The credit the payment produced; null until paid.")
    async def ledger_entry(self, info: Info) -> LedgerEntry | None:
        if self.ledger_entry_db_id is None:
            return None
        return cast(LedgerEntry, await load_existing(info, "LedgerEntry", self.ledger_entry_db_id))

    @strawberry.field(description="Refunds of this session, oldest first.")
    async def refunds(self, info: Info) -> list[Refund]:
        rows = await info.context.loaders.refunds.load(self.db_id)
        return [Refund.from_model(r) for r in rows]


async def checkout_session_page(
    info: Info,
    customer_db_id: int,
    *,
    first: int | None,
    after: str | None,
    status: CheckoutStatus | None,
) -> Connection[CheckoutSession]:
    """The customer's checkout sessions, newest first (by keyset: none skipped or repeated
    while new ones open), filtered by the status the graph shows."""
    limit = page_size(first)
    before_id = decode_cursor(CHECKOUT_CURSOR, after)
    rows = await info.context.loaders.checkout_session_page.load(
        SessionPageKey(
            customer_db_id, before_id, limit + 1, None if status is None else status.value
        )
    )
    return build_connection(
        rows, limit, CHECKOUT_CURSOR, lambda r: r.id, CheckoutSession.from_model
    )


@node_loader("CheckoutSession")
async def _load(info: Info, db_id: int) -> CheckoutSession | None:
    row = await info.context.loaders.checkout_session.load(db_id)
    return CheckoutSession.from_model(row) if row is not None else None


@node_loader("Refund")
async def _load_refund(info: Info, db_id: int) -> Refund | None:
    row = await info.context.loaders.refund.load(db_id)
    return Refund.from_model(row) if row is not None else None
