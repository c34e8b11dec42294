"""The webhook pipeline: a provider's event is verified by its adapter, stored in the inbox,
and acted on, exactly once.

One unit of work per event: the session row is locked, the session moves to COMPLETE and the
wallet is credited through `ledger.post_entry`, whose idempotency key derives from the
session (two different events confirming one payment credit once; an event for a session
already COMPLETE does nothing), and the event goes in the inbox with its outcome (the
provider and its event id are unique: a duplicate, even a concurrent one, finds it there and
its unit rolls back). A payment confirmed after the session
expired still credits (the money was taken) and is logged as late. What cannot be accepted
(a forged or stale signature, an unknown session, an amount or currency that is not the
session's) raises WebhookRefused, and the unit rolls back: nothing is written.
"""

import time
from collections.abc import Mapping
from enum import StrEnum

from billgraph.adapters.base import (
    EventKind,
    InvalidWebhook,
    PaymentProvider,
    Provider,
    WebhookEvent,
)
from billgraph.checkout import refunds, repository
from billgraph.checkout.providers import Providers
from billgraph.checkout.service import CheckoutMode, CheckoutStatus
from billgraph.core.errors import BillingError
from billgraph.core.unit import UnitOfWork, unit_of_work
from billgraph.db.engine import Database
from billgraph.db.models import CheckoutSession, utcnow
from billgraph.ledger import service as ledger
from billgraph.ledger.posting import EntryType
from billgraph.logs import get_logger

log = get_logger("billgraph.checkout.webhooks")


class Outcome(StrEnum):
    CREDITED = "credited"
    LATE_CREDIT = "late_credit"  # paid after the session expired
    ALREADY_COMPLETE = "already_complete"
    REFUNDED = "refunded"  # a refund made at the provider, debited
    ALREADY_REFUNDED = "already_refunded"  # a refund billgraph has recorded already
    PAYMENT_FAILED = "payment_failed"
    EXPIRED = "expired"
    IGNORED = "ignored"
    MIRRORED = "mirrored"  # a subscription or invoice Stripe runs, mirrored (billing)
    CHARGE_SETTLED = "charge_settled"  # an invoice charge whose answer was lost (billing)
    DUPLICATE = "duplicate"  # the inbox had it: nothing done (and nothing stored)


class WebhookRefused(Exception):
    """The event cannot be accepted; nothing was written. `status` is the HTTP answer's."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def credit_key(checkout_session_id: int) -> str:
    """The idempotency key of a session's credit: whatever confirms the payment, one entry."""
    return f"{ledger.RESERVED_KEY_PREFIX}checkout-session:{checkout_session_id}"


async def receive(
    database: Database,
    providers: Providers,
    provider: Provider,
    body: bytes,
    payload: object,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
) -> Outcome:
    """Verify and process one delivery: `body` as received, `payload` that body decoded.
    Raises WebhookRefused; ProviderError if the provider is not configured (or, for a
    provider verified by fetching, could not be reached)."""
    adapter = await providers.get(provider)
    return await handle(database, await verify(adapter, body, payload, headers, now))


async def verify(
    adapter: PaymentProvider,
    body: bytes,
    payload: object,
    headers: Mapping[str, str],
    now: float | None = None,
) -> WebhookEvent:
    """The delivery's event, verified by the provider's adapter. Raises WebhookRefused (not
    the provider's event), ProviderError (a provider verified by fetching was unreachable)."""
    try:
        return await adapter.parse_webhook(
            body, payload, headers, time.time() if now is None else now
        )
    except InvalidWebhook as exc:
        raise WebhookRefused(400, exc.code, exc.message) from None


async def record(
    unit: UnitOfWork, event: WebhookEvent, outcome: Outcome, checkout_session_id: int | None
) -> Outcome:
    """Put the processed event in the inbox with its outcome, last in its unit; raises
    DuplicateEvent if it was there already (the unit must then roll back what it did)."""
    recorded = await repository.record_event(
        unit,
        provider=event.provider.value,
        provider_event_id=event.event_id,
        event_type=event.event_type,
        outcome=outcome.value,
        checkout_session_id=checkout_session_id,
    )
    if not recorded:
        raise DuplicateEvent(event.event_id)
    return outcome


async def handle(database: Database, event: WebhookEvent) -> Outcome:
    """Process a verified event in a unit of work of its own; a duplicate rolls back
    whatever it did and is DUPLICATE."""
    try:
        async with unit_of_work(database) as unit:
            return await process(unit, event)
    except DuplicateEvent:
        return Outcome.DUPLICATE


class DuplicateEvent(Exception):
    """The inbox had the event: the unit must roll back (see process)."""


async def process(unit: UnitOfWork, event: WebhookEvent) -> Outcome:
    """Act on `event` and record it in the inbox, in the unit's transaction.

    The inbox row goes in last, with its outcome, and DuplicateEvent is raised if it was
    there already: the session row, locked first, serializes deliveries about one session,
    so a duplicate finds the session as the first delivery left it and does nothing that
    stays (and an event about no session is one insert either way).
    """
    row: CheckoutSession | None = None
    if event.kind is EventKind.REFUNDED:
        row, outcome = await _refunded(unit, event)
    elif event.kind is EventKind.IGNORED or event.provider_session_id is None:
        outcome = Outcome.IGNORED
    else:
        row = await repository.session_by_provider_id(
            unit.session, event.provider.value, event.provider_session_id, lock=True
        )
        if row is None:
            raise WebhookRefused(404, "UNKNOWN_SESSION", "No checkout session has this id.")
        outcome = await _act(unit, row, event)
    return await record(unit, event, outcome, None if row is None else row.id)


async def _act(unit: UnitOfWork, row: CheckoutSession, event: WebhookEvent) -> Outcome:
    outcome = Outcome.IGNORED
    if event.kind is EventKind.PAID and row.mode == CheckoutMode.SUBSCRIPTION:
        # A subscription's checkout collects a payment method: what it pays is its invoice's
        # (billing.collect), never a wallet credit.
        log.warning("paid event for a subscription checkout ignored", checkout_session_id=row.id)
    elif event.kind is EventKind.PAID:
        if event.amount != row.amount or event.currency != row.currency:
            raise WebhookRefused(
                422,
                "AMOUNT_MISMATCH",
                "The event's amount or currency is not the checkout session's.",
            )
        outcome = await _complete(unit, row, event)
    elif event.kind is EventKind.PAYMENT_FAILED and row.status == CheckoutStatus.OPEN:
        if event.error is not None:
            row.last_payment_error_code = event.error.code
            row.last_payment_error_message = event.error.message[:500]
            row.updated_at = utcnow()
        outcome = Outcome.PAYMENT_FAILED
    elif event.kind is EventKind.FAILED and row.status == CheckoutStatus.OPEN:
        # The payment failed for good (an async debit bounced): the session cannot be paid.
        row.status = CheckoutStatus.FAILED.value
        if event.error is not None:
            row.last_payment_error_code = event.error.code
            row.last_payment_error_message = event.error.message[:500]
        row.updated_at = utcnow()
        outcome = Outcome.PAYMENT_FAILED
    elif event.kind is EventKind.EXPIRED and row.status == CheckoutStatus.OPEN:
        row.status = CheckoutStatus.EXPIRED.value
        row.updated_at = utcnow()
        outcome = Outcome.EXPIRED
    await unit.session.flush()
    return outcome


async def _complete(unit: UnitOfWork, row: CheckoutSession, event: WebhookEvent) -> Outcome:
    if row.status == CheckoutStatus.COMPLETE:
        if row.provider_payment_id is None and event.provider_payment_id is not None:
            row.provider_payment_id = event.provider_payment_id  # what a refund will name
        return Outcome.ALREADY_COMPLETE
    now = utcnow()
    late = row.status == CheckoutStatus.EXPIRED or row.expires_at <= now
    request = ledger.entry_request(
        row.organization_id,
        customer_id=row.customer_id,
        currency=row.currency,
        entry_type=EntryType.CREDIT,
        amount=row.amount,
        reason=f"Top-up paid through {row.provider.lower()} checkout {row.provider_session_id}",
        idempotency_key=credit_key(row.id),
        reserved_key=True,
    )
    try:
        # The session row is locked: no other transaction can take this key meanwhile.
        posting = await ledger.post_entry(unit, request, contended=False)
    except BillingError as exc:  # the customer is gone, the wallet would overflow, ...
        log.error(
            "checkout payment cannot be credited",
            checkout_session_id=row.id,
            provider=row.provider,
            event_id=event.event_id,
            error=exc.code,
        )
        raise WebhookRefused(
            409, "CREDIT_REFUSED", "The payment cannot be credited to the customer's wallet."
        ) from None
    row.status = CheckoutStatus.COMPLETE.value
    row.completed_at = now
    row.updated_at = now
    row.ledger_entry_id = posting.entry.id
    row.provider_payment_id = event.provider_payment_id
    if late:
        log.warning(
            "checkout session paid after it expired: credited late",
            checkout_session_id=row.id,
            provider=row.provider,
            event_id=event.event_id,
        )
        return Outcome.LATE_CREDIT
    return Outcome.CREDITED


async def _refunded(
    unit: UnitOfWork, event: WebhookEvent
) -> tuple[CheckoutSession | None, Outcome]:
    """A refund at the provider (its dashboard, or billgraph's own coming back as an event)."""
    row = None
    if event.provider_payment_id is not None:
        row = await repository.session_by_payment_id(
            unit.session, event.provider.value, event.provider_payment_id, lock=True
        )
    if row is None:
        # A payment billgraph did not take (the account may serve more than billgraph):
        # acknowledged, so the provider stops retrying, and logged.
        log.warning(
            "refund event for an unknown payment ignored",
            provider=event.provider.value,
            event_id=event.event_id,
        )
        return None, Outcome.IGNORED
    total = event.refunded_total
    if event.currency != row.currency or total is None or not 0 <= total <= row.amount:
        raise WebhookRefused(
            422, "AMOUNT_MISMATCH", "The refund's amount or currency is not the payment's."
        )
    changed = await refunds.record_provider_refund(unit, row, total, event.event_id)
    return row, Outcome.REFUNDED if changed else Outcome.ALREADY_REFUNDED
