"""Invoices: a period's bill, paid from wallet credit first, then by the payment method.

Each step is recorded before the next one starts, so a crash between any two of them and a
rerun of the billing run end with one invoice, one wallet debit and at most one charge:
1. `issue` (one unit, with the subscription locked): the invoice with its number, its lines,
   the wallet debit that pays what credit can, and, if something is left and a payment method
   can pay it, a PENDING attempt. One invoice per subscription period (a unique key).
2. the provider's charge (charges.py), outside any transaction, with an idempotency key
   derived from the invoice and the attempt's number: asked again, the provider charges once.
3. `succeed` / `fail` (one unit): the attempt's outcome, the invoice PAID or scheduled for a
   retry, the subscription ACTIVE, PAST_DUE or SUSPENDED.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from billgraph.billing import coupons, events, repository
from billgraph.billing.dunning import Policy, SubscriptionStatus
from billgraph.billing.events import EventType
from billgraph.core.errors import BillingError, InsufficientBalanceError, NotFoundError
from billgraph.core.unit import UnitOfWork
from billgraph.db.models import Invoice, InvoiceAttempt, InvoiceLine, Plan, Subscription, utcnow
from billgraph.ledger import service as ledger
from billgraph.ledger.posting import EntryType
from billgraph.logs import get_logger
from billgraph.wallets import repository as wallet_repository

log = get_logger("billgraph.billing.invoices")

NO_PAYMENT_METHOD = "no_payment_method"


class InvoiceStatus(StrEnum):
    DRAFT = "DRAFT"
    OPEN = "OPEN"
    PAID = "PAID"
    VOID = "VOID"
    UNCOLLECTIBLE = "UNCOLLECTIBLE"


class AttemptOutcome(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


def invoice_number(invoice: Invoice) -> str:
    """The number as customers read it: INV-000001."""
    return f"INV-{invoice.number:06d}"


@dataclass(frozen=True)
class Issued:
    invoice: Invoice
    attempt: InvoiceAttempt | None  # PENDING: to charge now
    created: bool  # False: the period was invoiced before (a rerun)


async def issue(
    unit: UnitOfWork,
    subscription: Subscription,
    plan: Plan,
    period_start: datetime,
    period_end: datetime,
    now: datetime,
) -> Issued:
    """The period's invoice, with credit applied and a PENDING attempt if the payment method
    owes something; the existing one if the period was invoiced already."""
    existing = await repository.invoice_for_period(unit.session, subscription.id, period_start)
    if existing is not None:
        return Issued(existing, None, created=False)
    # The subscription's coupon, if it has one and it has not ended (coupons.py).
    discount = await coupons.invoice_discount(
        unit.session, subscription.id, plan.currency, plan.amount, period_start
    )
    invoice = Invoice(
        organization_id=subscription.organization_id,
        customer_id=subscription.customer_id,
        subscription_id=subscription.id,
        number=await repository.next_invoice_number(unit, subscription.organization_id),
        status=InvoiceStatus.OPEN.value,
        currency=plan.currency,
        subtotal=plan.amount,
        discount=discount,
        wallet_credit_applied=0,
        total=plan.amount - discount,
        amount_due=plan.amount - discount,
        amount_paid=0,
        attempt_count=0,
        due_at=now,
        period_start=period_start,
        period_end=period_end,
        hosted_token=secrets.token_urlsafe(32),
        created_at=now,
        updated_at=utcnow(),
    )
    unit.session.add(invoice)
    await unit.session.flush()
    unit.session.add(
        InvoiceLine(
            invoice_id=invoice.id,
            description=f"{plan.name} ({_span(period_start, period_end)})",
            amount=plan.amount,
            quantity=1,
            period_start=period_start,
            period_end=period_end,
        )
    )
    attempt = await start_attempt(unit, subscription, invoice, now)
    return Issued(invoice, attempt, created=True)


async def issue_proration(
    unit: UnitOfWork,
    subscription: Subscription,
    *,
    old: Plan,
    new: Plan,
    credit: int,
    charge: int,
    at: datetime,
) -> Invoice:
    """A prorated change's invoice (proration.py), from `at` to the period's end: a credit
    line for `old`'s unused time, a charge line for `new`'s, both priced by the caller (after
    the subscription's discount, so the invoice's own discount is 0). OPEN when it
    totals 0 or more (the caller starts its payment); a negative total (a downgrade) is
    credited to the wallet at once, one ledger credit whose key derives from the invoice:
    wallet_credit_applied = total < 0, nothing due, PAID."""
    end = subscription.current_period_end
    total = charge - credit
    refund = total < 0
    invoice = Invoice(
        organization_id=subscription.organization_id,
        customer_id=subscription.customer_id,
        subscription_id=subscription.id,
        number=await repository.next_invoice_number(unit, subscription.organization_id),
        status=(InvoiceStatus.PAID if refund else InvoiceStatus.OPEN).value,
        currency=new.currency,
        subtotal=total,
        discount=0,
        wallet_credit_applied=total if refund else 0,
        total=total,
        amount_due=0 if refund else total,
        amount_paid=0,
        attempt_count=0,
        due_at=at,
        paid_at=at if refund else None,
        period_start=at,
        period_end=end,
        hosted_token=secrets.token_urlsafe(32),
        created_at=at,
        updated_at=utcnow(),
    )
    unit.session.add(invoice)
    await unit.session.flush()
    span = _span(at, end)
    for description, amount in (
        (f"Unused time on {old.name} ({span})", -credit),
        (f"Remaining time on {new.name} ({span})", charge),
    ):
        unit.session.add(
            InvoiceLine(
                invoice_id=invoice.id,
                description=description,
                amount=amount,
                quantity=1,
                period_start=at,
                period_end=end,
            )
        )
    if refund:
        posting = await ledger.post_entry(
            unit,
            ledger.entry_request(
                invoice.organization_id,
                customer_id=invoice.customer_id,
                currency=invoice.currency,
                entry_type=EntryType.CREDIT,
                amount=-total,
                reason=f"Invoice {invoice_number(invoice)}: unused time credited",
                idempotency_key=f"{ledger.RESERVED_KEY_PREFIX}invoice:{invoice.id}:proration",
                reserved_key=True,
            ),
        )
        invoice.ledger_entry_id = posting.entry.id
    await unit.session.flush()
    return invoice


def _span(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"


async def apply_credit(unit: UnitOfWork, invoice: Invoice, attempt_number: int) -> int:
    """Pay what the wallet in the invoice's currency can of what is still owed: one debit,
    its reason naming the invoice. Returns the amount applied.

    The debit's key derives from the invoice, the attempt and the credit applied so far: each
    application has its own (an invoice waiting for a payment method may be offered credit
    again before any attempt is counted), and a rerun of the same step debits once. The debit
    and the invoice's update share the unit, so a replayed key means the credit was counted
    already: nothing more is applied."""
    owed = invoice.amount_due - invoice.amount_paid
    if owed <= 0:
        return 0
    balance = await wallet_repository.locked_balance(
        unit.session, invoice.organization_id, invoice.customer_id, invoice.currency
    )
    take = min(balance, owed)
    if take <= 0:
        return 0
    request = ledger.entry_request(
        invoice.organization_id,
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        entry_type=EntryType.DEBIT,
        amount=take,
        reason=f"Invoice {invoice_number(invoice)}",
        idempotency_key=f"{ledger.RESERVED_KEY_PREFIX}invoice:{invoice.id}:credit:"
        f"{attempt_number}:{invoice.wallet_credit_applied}",
        reserved_key=True,
    )
    try:
        posting = await ledger.post_entry(unit, request)
    except (NotFoundError, InsufficientBalanceError) as exc:
        # The customer was deleted meanwhile (or the wallet emptied): the method pays it all.
        log.warning("invoice credit not applied", invoice_id=invoice.id, error=exc.code)
        return 0
    if posting.replayed:
        return 0
    invoice.wallet_credit_applied += take
    invoice.amount_due -= take
    if invoice.ledger_entry_id is None:
        invoice.ledger_entry_id = posting.entry.id
    return take


async def start_attempt(
    unit: UnitOfWork,
    subscription: Subscription,
    invoice: Invoice,
    now: datetime,
    *,
    idempotency_key: str | None = None,
) -> InvoiceAttempt | None:
    """Try to pay the invoice: credit first; if that pays it, PAID at once and no attempt.
    Else a PENDING attempt for the payment method to charge (None without a payment method:
    the caller decides, see `fail`)."""
    number = invoice.attempt_count + 1
    await apply_credit(unit, invoice, number)
    if invoice.amount_due == invoice.amount_paid:
        await _paid(unit, subscription, invoice, now, by_credit=True)
        return None
    if subscription.payment_method_id is None:
        await unit.session.flush()
        return None
    invoice.attempt_count = number
    invoice.next_payment_attempt_at = None
    invoice.updated_at = utcnow()
    attempt = InvoiceAttempt(
        invoice_id=invoice.id,
        number=number,
        amount=invoice.amount_due - invoice.amount_paid,
        outcome=AttemptOutcome.PENDING.value,
        idempotency_key=idempotency_key,
        created_at=now,
        updated_at=utcnow(),
    )
    unit.session.add(attempt)
    await unit.session.flush()
    return attempt


async def _paid(
    unit: UnitOfWork,
    subscription: Subscription,
    invoice: Invoice,
    now: datetime,
    *,
    by_credit: bool,
) -> None:
    invoice.amount_paid = invoice.amount_due
    invoice.status = InvoiceStatus.PAID.value
    invoice.paid_at = now
    invoice.next_payment_attempt_at = None
    invoice.updated_at = utcnow()
    how = "wallet credit" if by_credit else "the payment method"
    events.record(
        unit,
        subscription,
        EventType.PAYMENT_SUCCEEDED,
        f"Invoice {invoice_number(invoice)} was paid by {how}.",
        now,
        invoice.id,
    )
    await _activate(unit, subscription, now)
    await unit.session.flush()


async def return_credit(unit: UnitOfWork, invoice: Invoice, why: str = "voided") -> None:
    """Give the wallet back the credit an invoice took that will not be paid with it (once:
    the key derives from the invoice); `why` ends the entry's reason."""
    if invoice.wallet_credit_applied <= 0:
        return
    request = ledger.entry_request(
        invoice.organization_id,
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        entry_type=EntryType.CREDIT,
        amount=invoice.wallet_credit_applied,
        reason=f"Invoice {invoice_number(invoice)} {why}",
        idempotency_key=f"{ledger.RESERVED_KEY_PREFIX}invoice:{invoice.id}:void",
        reserved_key=True,
    )
    try:
        await ledger.post_entry(unit, request)
    except BillingError as exc:  # the customer was deleted meanwhile
        log.warning("voided invoice's credit not returned", invoice_id=invoice.id, error=exc.code)


async def reactivate(unit: UnitOfWork, subscription: Subscription, now: datetime) -> None:
    """ACTIVE again if nothing is owed any more (see _activate)."""
    await _activate(unit, subscription, now)


async def _activate(unit: UnitOfWork, subscription: Subscription, now: datetime) -> None:
    """Paid: ACTIVE, unless something else is still owed (an older open invoice)."""
    status = SubscriptionStatus(subscription.status)
    if status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELED):
        return
    await unit.session.flush()
    if await repository.open_invoices(unit.session, subscription.id):
        return
    if subscription.next_billing_at is None or subscription.next_billing_at <= now:
        # Back from SUSPENDED (or INCOMPLETE after a trial): the paid period goes on to its
        # end; one that ended meanwhile is not billed for, the next period starts now.
        if subscription.current_period_end > now:
            subscription.next_billing_at = subscription.current_period_end
        else:
            subscription.billing_anchor = now
            subscription.next_billing_at = now
    subscription.status = SubscriptionStatus.ACTIVE.value
    subscription.updated_at = utcnow()
    events.record(unit, subscription, EventType.ACTIVATED, "The subscription is active.", now)


async def succeed(
    unit: UnitOfWork,
    subscription: Subscription,
    invoice: Invoice,
    attempt: InvoiceAttempt,
    provider_charge_id: str,
    now: datetime,
) -> None:
    attempt.outcome = AttemptOutcome.SUCCEEDED.value
    attempt.provider_charge_id = provider_charge_id
    attempt.updated_at = utcnow()
    await _paid(unit, subscription, invoice, now, by_credit=False)


async def fail(
    unit: UnitOfWork,
    subscription: Subscription,
    invoice: Invoice,
    attempt: InvoiceAttempt | None,
    code: str,
    message: str,
    now: datetime,
    policy: Policy,
) -> bool:
    """True if this failure suspended the subscription. A failed attempt (`attempt` None: there was no payment method to charge, which counts
    as one). A first invoice (INCOMPLETE) waits for a payment method; otherwise dunning:
    PAST_DUE with the next attempt scheduled, or SUSPENDED after the last."""
    if attempt is None:
        invoice.attempt_count += 1
        attempt = InvoiceAttempt(
            invoice_id=invoice.id,
            number=invoice.attempt_count,
            amount=invoice.amount_due - invoice.amount_paid,
            outcome=AttemptOutcome.FAILED.value,
            created_at=now,
        )
        unit.session.add(attempt)
    attempt.outcome = AttemptOutcome.FAILED.value
    attempt.failure_code = code[:64]
    attempt.failure_message = message[:500]
    attempt.updated_at = utcnow()
    invoice.updated_at = utcnow()
    number = invoice_number(invoice)
    events.record(
        unit,
        subscription,
        EventType.PAYMENT_FAILED,
        f"Invoice {number}: payment failed ({code}).",
        now,
        invoice.id,
    )
    status = SubscriptionStatus(subscription.status)
    if (
        status in (SubscriptionStatus.INCOMPLETE, SubscriptionStatus.CANCELED)
        or status is SubscriptionStatus.SUSPENDED
    ):
        invoice.next_payment_attempt_at = None
    elif (retry := policy.next_attempt(invoice.attempt_count, now)) is not None:
        invoice.next_payment_attempt_at = retry
        if status is not SubscriptionStatus.PAST_DUE:
            subscription.status = SubscriptionStatus.PAST_DUE.value
            events.record(
                unit,
                subscription,
                EventType.PAST_DUE,
                f"Invoice {number} is past due; next attempt {retry:%Y-%m-%d %H:%M} UTC.",
                now,
                invoice.id,
            )
    else:
        invoice.next_payment_attempt_at = None
        subscription.status = SubscriptionStatus.SUSPENDED.value
        subscription.next_billing_at = None
        events.record(
            unit,
            subscription,
            EventType.SUSPENDED,
            f"Suspended: invoice {number} could not be paid after {invoice.attempt_count} attempts.",
            now,
            invoice.id,
        )
    subscription.updated_at = utcnow()
    await unit.session.flush()
    return SubscriptionStatus(subscription.status) is SubscriptionStatus.SUSPENDED and (
        status is not SubscriptionStatus.SUSPENDED
    )
