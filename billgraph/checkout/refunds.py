"""Refunds of paid checkout sessions: the money goes back at the provider, then comes out of
the wallet, never taking it below zero.

A refund through billgraph (`refund`) is three steps, each safe to rerun with the same
idempotency key:
1. a unit that checks the session (paid, enough left to refund, enough balance unless
   `allow_shortfall`) and records the refund PENDING: from then on it counts against what is
   refundable, so racing refunds never give back more than the session took;
2. the provider's refund, with an idempotency key derived from the refund's id (a retry
   refunds once there too). A refusal marks the refund FAILED; an unknown outcome (timeout,
   outage) leaves it PENDING for the retry to finish;
3. a unit that debits the wallet what it holds, up to the amount (`shortfall`: what the
   customer had already spent), and marks the refund SUCCEEDED.

A refund made in the provider's dashboard arrives as an event with the payment's refunded
total (`record_provider_refund`): the part billgraph has not seen yet becomes a refund of
source PROVIDER, debited the same way, in the webhook's unit.
"""

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from billgraph.adapters.base import Provider
from billgraph.adapters.base import RefundRequest as ProviderRefundRequest
from billgraph.checkout import repository
from billgraph.checkout.providers import Providers
from billgraph.checkout.service import CheckoutStatus
from billgraph.core import validation
from billgraph.core.errors import (
    BillingError,
    ConflictError,
    IdempotencyConflictError,
    InsufficientBalanceError,
    NotFoundError,
    ProviderError,
    ValidationError,
)
from billgraph.core.unit import UnitOfWork, unit_of_work
from billgraph.db.engine import Database
from billgraph.db.models import CheckoutSession, Refund, Wallet, utcnow
from billgraph.ledger import service as ledger
from billgraph.ledger.posting import EntryType
from billgraph.logs import get_logger
from billgraph.wallets import repository as wallet_repository

log = get_logger("billgraph.checkout.refunds")


class RefundStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class RefundSource(StrEnum):
    API = "API"
    PROVIDER = "PROVIDER"


@dataclass(frozen=True)
class RefundOrder:
    """A checked request to refund part or all of a checkout session (see refund_order)."""

    organization_id: int
    checkout_session_id: int
    amount: int
    reason: str | None
    idempotency_key: str
    allow_shortfall: bool

    @cached_property
    def fingerprint(self) -> str:
        """What a replay must match: every parameter except the key itself."""
        payload = [self.checkout_session_id, self.amount, self.reason, self.allow_shortfall]
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


@dataclass(frozen=True)
class RefundDone:
    refund: Refund
    session: CheckoutSession
    wallet: Wallet | None
    replayed: bool


def refund_order(
    organization_id: int,
    *,
    checkout_session_id: int,
    amount: int,
    reason: str | None,
    idempotency_key: str,
    allow_shortfall: bool,
) -> RefundOrder:
    """The checked request; raises ValidationError naming the field at fault."""
    key = validation.text(idempotency_key, "idempotencyKey", max_length=255, required=True)
    assert key is not None
    if key.startswith(ledger.RESERVED_KEY_PREFIX):
        raise ValidationError(
            f"Idempotency keys starting with {ledger.RESERVED_KEY_PREFIX!r} are reserved for "
            "billgraph.",
            "idempotencyKey",
        )
    return RefundOrder(
        organization_id=organization_id,
        checkout_session_id=checkout_session_id,
        amount=validation.amount(amount),
        reason=validation.text(reason, "reason", max_length=500),
        idempotency_key=key,
        allow_shortfall=allow_shortfall,
    )


async def refund(database: Database, providers: Providers, order: RefundOrder) -> RefundDone:
    """Refund at the provider, then debit the wallet; exactly once per idempotency key.

    Raises NotFoundError (unknown session, or another organization's), ConflictError (the
    session is not paid), ValidationError (more than is left to refund),
    InsufficientBalanceError (the customer spent the credit and shortfall is not allowed:
    nothing refunded), IdempotencyConflictError, ProviderError (the provider refused: the
    refund is FAILED; or its outcome is unknown: the refund stays PENDING and the same call
    finishes it).
    """
    async with unit_of_work(database) as unit:
        pending = await _open(unit, order)
        if pending.status != RefundStatus.PENDING:
            return await _done(unit, pending, replayed=True)
        session = await repository.session_by_id(
            unit.session, order.organization_id, order.checkout_session_id
        )
        assert session is not None and session.provider_payment_id is not None
        payment_id, provider, currency = (
            session.provider_payment_id,
            Provider(session.provider),
            session.currency,
        )
        refund_id = pending.id
    adapter = await providers.get(provider)
    try:
        answer = await adapter.refund(
            ProviderRefundRequest(
                provider_payment_id=payment_id,
                amount=order.amount,
                currency=currency,
                reason=order.reason,
                idempotency_key=f"{await providers.key_prefix()}refund-{refund_id}",
            )
        )
    except ProviderError as exc:
        if exc.code != "provider_unavailable":
            async with unit_of_work(database) as unit:
                await _fail(unit, order, exc.code, str(exc))
        raise
    async with unit_of_work(database) as unit:
        # The session first, then the refund: the order every writer of a session's refunds
        # takes (the provider's refund events too), so two of them cannot deadlock.
        session = await repository.session_by_id(
            unit.session, order.organization_id, order.checkout_session_id, lock=True
        )
        assert session is not None
        row = await repository.refund_by_key(
            unit.session, order.organization_id, order.idempotency_key, lock=True
        )
        assert row is not None
        if row.status == RefundStatus.PENDING:
            if answer.status == "failed":
                await _fail(unit, order, "refund_failed", "The provider could not refund it.")
                raise ProviderError(
                    "invalid_request", "The provider could not make the refund.", provider.value
                )
            row.provider_refund_id = answer.provider_refund_id
            await _settle(unit, row, session)
        return await _done(unit, row, replayed=False)


async def _open(unit: UnitOfWork, order: RefundOrder) -> Refund:
    """The refund of this key: the one recorded before (checked against the order), or a new
    PENDING one once the session is found able to give the amount back."""
    session = await repository.session_by_id(
        unit.session, order.organization_id, order.checkout_session_id, lock=True
    )
    if session is None:
        raise NotFoundError("Checkout session not found.")
    existing = await repository.refund_by_key(
        unit.session, order.organization_id, order.idempotency_key
    )
    if existing is not None:
        if existing.request_hash != order.fingerprint:
            raise IdempotencyConflictError(order.idempotency_key)
        if existing.status == RefundStatus.FAILED:
            raise ProviderError(
                existing.failure_code or "invalid_request",
                existing.failure_message or "The provider refused the refund.",
                session.provider,
            )
        return existing
    if session.status != CheckoutStatus.COMPLETE or session.provider_payment_id is None:
        raise ConflictError("Only a paid checkout session can be refunded.", "checkoutSessionId")
    left = session.amount - await repository.refunded_amount(unit.session, session.id)
    if order.amount > left:
        raise ValidationError(
            f"At most {left} of this checkout session is left to refund.", "amount"
        )
    balance = await wallet_repository.locked_balance(
        unit.session, session.organization_id, session.customer_id, session.currency
    )
    if balance < order.amount and not order.allow_shortfall:
        raise InsufficientBalanceError(
            balance=balance, requested=order.amount, currency=session.currency
        )
    now = utcnow()
    row = Refund(
        organization_id=order.organization_id,
        checkout_session_id=session.id,
        amount=order.amount,
        wallet_debited=0,
        shortfall=0,
        status=RefundStatus.PENDING.value,
        source=RefundSource.API.value,
        reason=order.reason,
        allow_shortfall=order.allow_shortfall,
        idempotency_key=order.idempotency_key,
        request_hash=order.fingerprint,
        created_at=now,
        updated_at=now,
    )
    unit.session.add(row)
    await unit.session.flush()
    return row


async def _fail(unit: UnitOfWork, order: RefundOrder, code: str, message: str) -> None:
    row = await repository.refund_by_key(
        unit.session, order.organization_id, order.idempotency_key, lock=True
    )
    if row is not None and row.status == RefundStatus.PENDING:
        row.status = RefundStatus.FAILED.value
        row.failure_code = code[:64]
        row.failure_message = message[:500]
        row.updated_at = utcnow()
        await unit.session.flush()


async def _settle(unit: UnitOfWork, row: Refund, session: CheckoutSession) -> None:
    """Debit the wallet what it holds of the refund's amount and mark it SUCCEEDED."""
    balance = await wallet_repository.locked_balance(
        unit.session, session.organization_id, session.customer_id, session.currency
    )
    debit = min(balance, row.amount)
    if debit > 0:
        request = ledger.entry_request(
            session.organization_id,
            customer_id=session.customer_id,
            currency=session.currency,
            entry_type=EntryType.DEBIT,
            amount=debit,
            reason=f"Refund of {session.provider.lower()} checkout {session.provider_session_id}",
            idempotency_key=f"{ledger.RESERVED_KEY_PREFIX}refund:{row.id}",
            reserved_key=True,
        )
        try:
            posting = await ledger.post_entry(unit, request)
        except BillingError as exc:  # the customer was deleted: nothing can be taken back
            log.warning("refund not debited", refund_id=row.id, error=exc.code)
            debit = 0
        else:
            row.ledger_entry_id = posting.entry.id
    row.wallet_debited = debit
    row.shortfall = row.amount - debit
    row.status = RefundStatus.SUCCEEDED.value
    row.updated_at = utcnow()
    await unit.session.flush()
    if row.shortfall and not row.allow_shortfall:
        log.warning(
            "refund exceeded the balance left after it was accepted",
            refund_id=row.id,
            shortfall=row.shortfall,
        )


async def _done(unit: UnitOfWork, row: Refund, *, replayed: bool) -> RefundDone:
    session = await repository.session_by_id(
        unit.session, row.organization_id, row.checkout_session_id
    )
    assert session is not None
    wallets = await wallet_repository.wallets_by_customer_ids(
        unit.session, session.organization_id, [session.customer_id]
    )
    wallet = next(
        (w for w in wallets.get(session.customer_id, []) if w.currency == session.currency), None
    )
    return RefundDone(refund=row, session=session, wallet=wallet, replayed=replayed)


async def record_provider_refund(
    unit: UnitOfWork, session: CheckoutSession, refunded_total: int, event_id: str
) -> bool:
    """The provider now has `refunded_total` refunded of the session's payment; `session` is
    locked by the caller. True if that changed anything here:
    - PENDING refunds of billgraph's (whose provider call did not answer, and whose retry may
      never come) that the total covers, oldest first, are settled: the money went back, so
      the wallet is debited now;
    - what the total holds beyond every refund billgraph knows is a refund made outside it
      (the provider's dashboard): recorded as source PROVIDER and debited."""
    if refunded_total > session.amount:
        raise ValueError("refunded more than the payment")
    settled = await repository.refunded_amount(unit.session, session.id, status="SUCCEEDED")
    left = refunded_total - settled
    changed = False
    for pending in await repository.pending_refunds(unit.session, session.id):
        if pending.amount > left:
            break
        await _settle(unit, pending, session)
        left -= pending.amount
        changed = True
    new = refunded_total - await repository.refunded_amount(unit.session, session.id)
    if new <= 0:
        return changed
    now = utcnow()
    # Derived from the total, so two events reporting the same refund record one.
    key = f"{ledger.RESERVED_KEY_PREFIX}provider-refund:{session.id}:{refunded_total}"
    row = Refund(
        organization_id=session.organization_id,
        checkout_session_id=session.id,
        amount=new,
        wallet_debited=0,
        shortfall=0,
        status=RefundStatus.PENDING.value,
        source=RefundSource.PROVIDER.value,
        reason=f"Refunded at {session.provider.lower()} (event {event_id})"[:500],
        allow_shortfall=True,
        idempotency_key=key,
        request_hash=hashlib.sha256(key.encode()).hexdigest(),
        created_at=now,
        updated_at=now,
    )
    unit.session.add(row)
    await unit.session.flush()
    await _settle(unit, row, session)
    if row.shortfall:
        log.warning(
            "provider refund exceeds the wallet's balance",
            refund_id=row.id,
            checkout_session_id=session.id,
            shortfall=row.shortfall,
        )
    return True
