"""CheckoutSession, its payment error and refunds, and a customer's sessions connection."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry

from billgraph.checkout import service
from billgraph.db import models
from billgraph.graphql.checkout.enums import CheckoutMode, CheckoutStatus, PaymentProvider
from billgraph.graphql.checkout.loaders import SessionPageKey
from billgraph.graphql.context import Info
from billgraph.graphql.currencies import Currency
from billgraph.graphql.ledger.types import LedgerEntry
from billgraph.graphql.node import Node, load_existing, node_loader, to_global_id
from billgraph.graphql.pagination import Connection, build_connection, decode_cursor, page_size
from billgraph.graphql.scalars import BigInt

if TYPE_CHECKING:
    from billgraph.graphql.customers.types import Customer

CHECKOUT_CURSOR = "checkout"


@strawberry.type(description="Why the last attempt to pay a session failed.")
class PaymentError:
    code: str = strawberry.field(
        description="Provider-neutral: card_declined, insufficient_funds, expired_card, "
        "authentication_required, ..."
    )
    message: str


@strawberry.type(description="Money given back from a checkout session (refunds are to come).")
class Refund:
    id: strawberry.ID
    amount: BigInt
    wallet_debited: BigInt
    shortfall: BigInt
    status: str
    created_at: datetime


@strawberry.type(description="A customer's payment at a provider that tops up a wallet.")
class CheckoutSession(Node):
    db_id: strawberry.Private[int]
    customer_db_id: strawberry.Private[int]
    ledger_entry_db_id: strawberry.Private[int | None]
    provider: PaymentProvider
    mode: CheckoutMode
    status: CheckoutStatus = strawberry.field(
        description="An OPEN session past its expiresAt is EXPIRED."
    )
    amount: BigInt = strawberry.field(description="In the currency's minor unit.")
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
        description="The last declined attempt; the session stays OPEN for another."
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

    @strawberry.field(description="The credit the payment produced; null until paid.")
    async def ledger_entry(self, info: Info) -> LedgerEntry | None:
        if self.ledger_entry_db_id is None:
            return None
        return cast(LedgerEntry, await load_existing(info, "LedgerEntry", self.ledger_entry_db_id))

    @strawberry.field(description="Refunds of this session, oldest first (none yet: to come).")
    def refunds(self) -> list[Refund]:
        return []


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
