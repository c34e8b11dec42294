"""Subscriptions and invoices Stripe runs, mirrored from its webhooks.

Stripe bills them (periods, invoices, retries); billgraph keeps a copy its graph can show:
the Subscription (status, periods, trial, pending cancellation), an Invoice per Stripe
invoice (billgraph's own number, sequential per organization, its lines and amounts, the
attempts Stripe made), and SubscriptionEvents for the transitions.

- Every customer.subscription.* and invoice.* event, and a subscription-mode
  checkout.session.completed, goes through the checkout pipeline's inbox (a duplicate is
  DUPLICATE, nothing done) and is order-tolerant: the event's own snapshot is never read;
  the subscription and its invoice are fetched from Stripe first, outside any transaction,
  and what was fetched is applied only if no later fetch was applied before it
  (`provider_synced_at`), so a stale or late event never moves a subscription backwards.
  A CANCELED subscription stays canceled.
- A subscription billgraph has not linked yet (its checkout's event not delivered) is found
  by the billgraph ids in its metadata; an object without them (made in the dashboard, or by
  another application on the account) is acknowledged and IGNORED.
- The subscription-mode checkout session is COMPLETE without crediting a wallet: the money
  paid the subscription's first invoice, at Stripe.
- Wallet credit first (`credit_first`): an invoice still a draft when its event is handled
  (a renewal's: Stripe waits about an hour before finalizing it) is paid what the wallet in
  its currency can: a ledger debit (its key derived from billgraph's invoice, its reason the
  invoice's number) recorded with the invoice, then a negative invoice item at Stripe (its
  idempotency key derived from the invoice too), so Stripe charges only the rest. A failure
  at Stripe in between is retried by Stripe's redelivery (the debit is not made twice); an
  invoice Stripe finalized meanwhile gets its credit back. A first invoice (finalized at
  checkout) is charged in full; a voided invoice gives its credit back.
"""

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from billgraph.adapters.base import EventKind, Provider, WebhookEvent
from billgraph.adapters.stripe import StripeProvider
from billgraph.adapters.stripe_billing import (
    CUSTOMER_KEY,
    ORGANIZATION_KEY,
    SUBSCRIPTION_KEY,
    ProviderInvoice,
    ProviderSubscription,
)
from billgraph.billing import events, invoices, repository
from billgraph.billing.dunning import RENEWING, SubscriptionStatus
from billgraph.billing.events import EventType
from billgraph.billing.invoices import InvoiceStatus, invoice_number
from billgraph.checkout import repository as checkout_repository
from billgraph.checkout import webhooks
from billgraph.checkout.providers import Providers
from billgraph.checkout.service import CheckoutMode, CheckoutStatus
from billgraph.core.errors import ProviderError
from billgraph.core.unit import UnitOfWork, unit_of_work
from billgraph.db.engine import Database
from billgraph.db.models import Invoice, Subscription, utcnow
from billgraph.logs import get_logger

log = get_logger("billgraph.billing.stripe_mirror")

STATUSES = {
    "incomplete": SubscriptionStatus.INCOMPLETE,
    "trialing": SubscriptionStatus.TRIALING,
    "active": SubscriptionStatus.ACTIVE,
    "past_due": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.SUSPENDED,
    "paused": SubscriptionStatus.SUSPENDED,
    "canceled": SubscriptionStatus.CANCELED,
    "incomplete_expired": SubscriptionStatus.CANCELED,
}
INVOICE_STATUSES = {
    "draft": InvoiceStatus.DRAFT,
    "open": InvoiceStatus.OPEN,
    "paid": InvoiceStatus.PAID,
    "void": InvoiceStatus.VOID,
    "uncollectible": InvoiceStatus.UNCOLLECTIBLE,
}
TRIAL_WILL_END = "customer.subscription.trial_will_end"
STRIPE = Provider.STRIPE.value


@dataclass(frozen=True)
class Fetched:
    """What Stripe has now, fetched before the unit of work (`at`: when)."""

    subscription: ProviderSubscription | None
    invoice: ProviderInvoice | None
    at: datetime


async def receive(
    database: Database,
    providers: Providers,
    body: bytes,
    payload: object,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
) -> webhooks.Outcome:
    """POST /webhooks/stripe: verified by the adapter; billing's events are mirrored here,
    the others (top-ups, refunds) go on to the checkout pipeline. Raises WebhookRefused,
    ProviderError (Stripe not configured, or it could not be reached to fetch the object:
    Stripe delivers the event again later)."""
    adapter = providers.stripe()
    event = await webhooks.verify(adapter, body, payload, headers, now)
    if event.kind is not EventKind.BILLING and event.provider_subscription_id is None:
        return await webhooks.handle(database, event)
    fetched = await fetch(adapter, event)
    if await credit_first(database, providers, adapter, fetched):
        fetched = await fetch(adapter, event)  # the invoice with its credit
    try:
        async with unit_of_work(database) as unit:
            outcome, session_id, orphan = await _apply_event(unit, event, fetched)
            await webhooks.record(unit, event, outcome, session_id)
    except webhooks.DuplicateEvent:
        return webhooks.Outcome.DUPLICATE
    if orphan is not None:
        await _cancel_orphan(adapter, orphan)
    return outcome


async def _cancel_orphan(adapter: StripeProvider, provider_subscription_id: str) -> None:
    """Stripe's subscription lives on although billgraph's was canceled (its checkout
    completed while the cancel was made here, before this event came): canceled at Stripe
    too, so Stripe does not bill a subscription billgraph shows CANCELED. A later event
    tries again if Stripe fails now."""
    log.warning("Stripe subscription of a canceled one canceled", id=provider_subscription_id)
    try:
        await adapter.cancel_subscription(provider_subscription_id)
    except ProviderError as exc:
        if exc.code != "invalid_request":  # canceled there already
            log.warning("Stripe subscription not canceled yet", error=exc.code)


async def fetch(adapter: StripeProvider, event: WebhookEvent) -> Fetched:
    """The event's subscription and invoice as Stripe has them now (a subscription's event:
    its latest invoice)."""
    at = utcnow()
    invoice = None
    if event.provider_invoice_id is not None:
        invoice = await adapter.retrieve_invoice(event.provider_invoice_id)
    subscription_id = event.provider_subscription_id or (invoice and invoice.subscription_id)
    subscription = None
    if subscription_id:
        subscription = await adapter.retrieve_subscription(subscription_id)
        if invoice is None and subscription.latest_invoice:
            invoice = await adapter.retrieve_invoice(subscription.latest_invoice)
    return Fetched(subscription, invoice, at)


async def credit_first(
    database: Database, providers: Providers, adapter: StripeProvider, fetched: Fetched
) -> bool:
    """Pay a draft invoice from wallet credit first (see the module's docstring); True if a
    credit was added at Stripe now. Raises ProviderError (Stripe failed: the debit stays,
    recorded with the invoice, and the next delivery adds the credit with the same key)."""
    found = fetched.invoice
    if (
        fetched.subscription is None
        or found is None
        or found.status != "draft"
        or found.wallet_credit > 0  # added already
        or found.amount_due <= 0
        or found.subscription_id != fetched.subscription.id
    ):
        return False
    async with unit_of_work(database) as unit:
        subscription = await _linked(unit, fetched.subscription, found)
        if subscription is None or subscription.status == SubscriptionStatus.CANCELED:
            return False  # not billgraph's, or canceled here (Stripe's is canceled on receipt)
        row = await apply_invoice(unit, subscription, found, fetched.at)
        if row is None or row.status != InvoiceStatus.DRAFT:
            return False
        if row.wallet_credit_applied == 0:
            await invoices.apply_credit(unit, row, 0)
        await unit.session.flush()
        organization_id, invoice_id, amount = row.organization_id, row.id, row.wallet_credit_applied
        number = invoice_number(row)
    if amount == 0:
        return False
    prefix = await providers.key_prefix()
    try:
        await adapter.add_wallet_credit(
            found,
            amount,
            f"Wallet credit (billgraph invoice {number})",
            str(invoice_id),
            f"{prefix}invoice-credit-{invoice_id}",
        )
    except ProviderError as exc:
        if exc.code != "invalid_request":
            raise
        # Finalized meanwhile: Stripe charges it all, so the wallet gets its credit back.
        log.warning("Stripe invoice finalized before its credit", invoice_id=invoice_id)
        async with unit_of_work(database) as unit:
            row = await repository.invoice_by_id(
                unit.session, organization_id, invoice_id, lock=True
            )
            assert row is not None
            await invoices.return_credit(unit, row, "finalized by Stripe without it")
            row.amount_due += row.wallet_credit_applied
            row.wallet_credit_applied = 0
        return False
    return True


async def _apply_event(
    unit: UnitOfWork, event: WebhookEvent, fetched: Fetched
) -> tuple[webhooks.Outcome, int | None, str | None]:
    """The outcome, the checkout session the event completed, and the id of a Stripe
    subscription to cancel at Stripe (billgraph's is CANCELED, Stripe's lives on)."""
    session_id = None
    if event.provider_session_id is not None:  # a subscription-mode checkout completed
        row = await checkout_repository.session_by_provider_id(
            unit.session, STRIPE, event.provider_session_id, lock=True
        )
        if row is not None and row.mode == CheckoutMode.SUBSCRIPTION:
            session_id = row.id
            if row.status != CheckoutStatus.COMPLETE:
                row.status = CheckoutStatus.COMPLETE.value
                row.completed_at = row.updated_at = utcnow()
    if fetched.subscription is None:
        log.info("Stripe invoice of no subscription ignored", event_id=event.event_id)
        return webhooks.Outcome.IGNORED, session_id, None
    subscription = await _linked(unit, fetched.subscription, fetched.invoice)
    if subscription is None:
        log.info(
            "Stripe subscription without billgraph's ids ignored",
            event_id=event.event_id,
            provider_subscription_id=fetched.subscription.id,
        )
        return webhooks.Outcome.IGNORED, session_id, None
    orphan = None
    if subscription.status == SubscriptionStatus.CANCELED and (
        STATUSES.get(fetched.subscription.status) is not SubscriptionStatus.CANCELED
    ):
        orphan = fetched.subscription.id
    # The invoice first: its payment (or failure) is what moved the subscription.
    if fetched.invoice is not None and fetched.invoice.subscription_id == fetched.subscription.id:
        await apply_invoice(unit, subscription, fetched.invoice, fetched.at)
    await apply_subscription(unit, subscription, fetched.subscription, fetched.at)
    if event.event_type == TRIAL_WILL_END:
        _trial_will_end(unit, subscription)
    await unit.session.flush()
    return webhooks.Outcome.MIRRORED, session_id, orphan


async def _linked(
    unit: UnitOfWork, found: ProviderSubscription, invoice: ProviderInvoice | None
) -> Subscription | None:
    """billgraph's subscription for Stripe's, locked: by its Stripe id, or (not linked yet)
    by billgraph's ids in its metadata; None for a subscription that is not billgraph's."""
    row = await repository.subscription_by_provider_id(unit.session, STRIPE, found.id, lock=True)
    if row is not None:
        return row
    metadata = found.metadata or (invoice.metadata if invoice is not None else {})
    try:
        organization_id = int(metadata[ORGANIZATION_KEY])
        subscription_id = int(metadata[SUBSCRIPTION_KEY])
        customer_id = int(metadata[CUSTOMER_KEY])
    except (KeyError, ValueError):
        return None
    row = await repository.subscription_by_id(
        unit.session, organization_id, subscription_id, lock=True
    )
    if (
        row is None
        or row.provider != STRIPE
        or row.customer_id != customer_id
        or row.provider_subscription_id not in (None, found.id)
    ):
        return None
    row.provider_subscription_id = found.id
    return row


async def apply_subscription(
    unit: UnitOfWork, row: Subscription, found: ProviderSubscription, fetched_at: datetime
) -> None:
    """Make the locked `row` what Stripe had at `fetched_at`, unless a later fetch was
    applied already; the transitions become SubscriptionEvents."""
    if row.provider_synced_at is not None and fetched_at < row.provider_synced_at:
        return
    row.provider_synced_at = fetched_at
    now = utcnow()
    previous = SubscriptionStatus(row.status)
    status = STATUSES.get(found.status, previous)
    if previous is SubscriptionStatus.CANCELED:
        return  # canceled is final, whatever a stale fetch says
    if found.current_period_end > found.current_period_start:
        row.current_period_start = found.current_period_start
        row.current_period_end = found.current_period_end
    row.billing_anchor = found.billing_cycle_anchor or row.current_period_start
    row.trial_end = found.trial_end
    was_canceling = row.cancel_at_period_end
    row.cancel_at_period_end = found.cancel_at_period_end and status is not (
        SubscriptionStatus.CANCELED
    )
    row.status = status.value
    row.next_action_at = None  # Stripe bills it: never due in billgraph's run
    renewing = status in RENEWING and not row.cancel_at_period_end
    row.next_billing_at = row.current_period_end if renewing else None
    row.updated_at = now
    if status is not previous:
        _transition(unit, row, status, found, now)
    elif row.cancel_at_period_end and not was_canceling:
        events.record(
            unit,
            row,
            EventType.CANCEL_SCHEDULED,
            f"Cancels at the end of the period ({row.current_period_end:%Y-%m-%d}).",
            now,
        )
    elif was_canceling and not row.cancel_at_period_end:
        events.record(unit, row, EventType.RESUMED, "The pending cancellation was undone.", now)


def _transition(
    unit: UnitOfWork,
    row: Subscription,
    status: SubscriptionStatus,
    found: ProviderSubscription,
    now: datetime,
) -> None:
    if status is SubscriptionStatus.CANCELED:
        row.canceled_at = found.canceled_at or now
        row.cancel_at_period_end = False
        events.record(unit, row, EventType.CANCELED, "Canceled at Stripe.", now)
    elif status is SubscriptionStatus.ACTIVE:
        events.record(unit, row, EventType.ACTIVATED, "The subscription is active.", now)
    elif status is SubscriptionStatus.TRIALING:
        events.record(unit, row, EventType.ACTIVATED, "The trial started.", now)
    elif status is SubscriptionStatus.PAST_DUE:
        events.record(unit, row, EventType.PAST_DUE, "Past due: Stripe retries the payment.", now)
    elif status is SubscriptionStatus.SUSPENDED:
        events.record(
            unit, row, EventType.SUSPENDED, f"Suspended: Stripe marked it {found.status}.", now
        )


def _trial_will_end(unit: UnitOfWork, row: Subscription) -> None:
    if row.trial_end is None or row.reminded_for == row.trial_end:
        return
    row.reminded_for = row.trial_end
    events.record(
        unit, row, EventType.TRIAL_WILL_END, f"The trial ends {row.trial_end:%Y-%m-%d}.", utcnow()
    )


async def apply_invoice(
    unit: UnitOfWork, subscription: Subscription, found: ProviderInvoice, fetched_at: datetime
) -> Invoice | None:
    """billgraph's invoice for Stripe's: made the first time it is seen (numbered as
    billgraph numbers its own), then kept as Stripe has it, unless a later fetch was applied
    already. None when the period already has another invoice (logged)."""
    row = await repository.invoice_by_provider_id(unit.session, found.id, lock=True)
    synced = None if row is None else row.provider_synced_at
    if row is not None and synced is not None and fetched_at < synced:
        return row
    status = INVOICE_STATUSES.get(found.status, InvoiceStatus.DRAFT)
    # billgraph's amounts obey total = subtotal - discount, amount_due = total - credit;
    # Stripe's are net of the wallet credit billgraph added as an item.
    credit = 0 if row is None else row.wallet_credit_applied
    if (
        row is not None
        and credit > 0
        and found.wallet_credit == 0
        and status is not (InvoiceStatus.DRAFT)
    ):
        # Finalized before billgraph's credit item reached it (Stripe failed, the delivery
        # was retried late): Stripe collects it all, so the wallet gets its debit back.
        log.warning("Stripe invoice finalized without its credit", invoice_id=row.id)
        await invoices.return_credit(unit, row, "finalized by Stripe without it")
        row.wallet_credit_applied = credit = 0
    total = max(found.total + found.wallet_credit, credit)
    subtotal = max(found.subtotal + found.wallet_credit, total)
    amount_due = total - credit
    paid = min(found.amount_paid, amount_due)
    amount_paid = amount_due if status is InvoiceStatus.PAID else paid
    period_start, period_end = _period(found)
    now = utcnow()
    if row is None:
        taken = await repository.invoice_for_period(unit.session, subscription.id, period_start)
        if taken is not None:
            log.warning(
                "Stripe invoice for a period invoiced already: not mirrored",
                invoice_id=taken.id,
                provider_invoice_id=found.id,
            )
            return None
        row = Invoice(
            organization_id=subscription.organization_id,
            customer_id=subscription.customer_id,
            subscription_id=subscription.id,
            number=await repository.next_invoice_number(unit, subscription.organization_id),
            status=InvoiceStatus.DRAFT.value,
            currency=found.currency,
            attempt_count=0,
            amount_paid=0,
            wallet_credit_applied=0,
            period_start=period_start,
            period_end=period_end,
            hosted_token=secrets.token_urlsafe(32),
            provider_invoice_id=found.id,
            created_at=found.created,
        )
        unit.session.add(row)
        previous_status, previous_attempts, previous_paid = InvoiceStatus.DRAFT, 0, False
        lines_change = True
    else:
        previous_status = InvoiceStatus(row.status)
        previous_attempts = row.attempt_count
        previous_paid = previous_status is InvoiceStatus.PAID
        lines_change = previous_status is InvoiceStatus.DRAFT
    row.status = status.value
    row.subtotal, row.discount, row.total = subtotal, subtotal - total, total
    row.amount_due, row.amount_paid = amount_due, amount_paid
    row.attempt_count = max(found.attempt_count, row.attempt_count)
    row.next_payment_attempt_at = found.next_payment_attempt
    row.due_at = found.due_date or found.created
    row.paid_at = (found.paid_at or now) if status is InvoiceStatus.PAID else None
    row.provider_synced_at = fetched_at
    row.updated_at = now
    await unit.session.flush()
    if lines_change:
        await repository.replace_invoice_lines(
            unit,
            row.id,
            [
                {
                    "description": line.description,
                    "amount": line.amount,
                    "quantity": line.quantity,
                    "period_start": line.period_start,
                    "period_end": line.period_end,
                }
                for line in found.lines
            ],
        )
    number = invoice_number(row)
    if status is InvoiceStatus.VOID and previous_status is not InvoiceStatus.VOID:
        await invoices.return_credit(unit, row)
    if status is InvoiceStatus.PAID and not previous_paid:
        events.record(
            unit,
            subscription,
            EventType.PAYMENT_SUCCEEDED,
            f"Invoice {number} was paid at Stripe.",
            now,
            row.id,
        )
    elif status is InvoiceStatus.OPEN:
        # One event per failed attempt, those a single fetch caught up with included.
        for attempt in range(previous_attempts + 1, row.attempt_count + 1):
            events.record(
                unit,
                subscription,
                EventType.PAYMENT_FAILED,
                f"Invoice {number}: Stripe's attempt {attempt} failed.",
                now,
                row.id,
            )
    return row


def _period(found: ProviderInvoice) -> tuple[datetime, datetime]:
    """The period the invoice bills: its first line's (Stripe's own period_start/end on an
    invoice are when its items were added, not the subscription period)."""
    if found.lines:
        return found.lines[0].period_start, found.lines[0].period_end
    return found.created, found.created
