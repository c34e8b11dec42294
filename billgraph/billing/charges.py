"""Charging an invoice's PENDING attempt through the subscription's provider.

The provider is called outside any transaction, with an idempotency key derived from the
invoice and the attempt's number (and starting with this installation's prefix), so a crash
before the outcome is recorded, then a rerun, charges once. Two runs racing on the same
attempt ask the provider twice with one key: one charge, and the second outcome recorded finds
the attempt settled already.
"""

import re
from datetime import datetime, timedelta
from enum import StrEnum

from billgraph.adapters.base import ChargeRequest, Provider
from billgraph.billing import dunning, invoices, repository
from billgraph.billing.clock import subscription_now
from billgraph.checkout.providers import Providers
from billgraph.core.errors import ProviderError
from billgraph.core.secrets import Vault, VaultError
from billgraph.core.unit import UnitOfWork, unit_of_work
from billgraph.db.engine import Database
from billgraph.db.models import Subscription
from billgraph.logs import get_logger

log = get_logger("billgraph.billing.charges")

# An attempt whose outcome the provider did not give (timeout, outage) is asked again after this.
UNKNOWN_OUTCOME_RETRY = timedelta(hours=1)


def reference(prefix: str, invoice_id: int, attempt_number: int) -> str:
    """The order id a charge carries at the provider (Toss's orderId): the invoice and the
    attempt, after this installation's prefix."""
    return f"{prefix}inv-{invoice_id}-{attempt_number}"[:64]


def attempt_of(reference: str, prefix: str) -> tuple[int, int] | None:
    """(invoice id, attempt number) of a `reference` this installation made; else None."""
    found = re.fullmatch(re.escape(prefix) + r"inv-(\d{1,18})-(\d{1,9})", reference)
    return None if found is None else (int(found[1]), int(found[2]))


class ChargeOutcome(StrEnum):
    CHARGED = "charged"
    FAILED = "failed"
    SUSPENDED = "suspended"  # failed, and that suspended the subscription
    UNKNOWN = "unknown"
    SETTLED = "settled"  # another run recorded it first


async def charge(
    database: Database,
    providers: Providers,
    attempt_id: int,
    policy: dunning.Policy,
    now: datetime | None = None,
) -> ChargeOutcome:
    """Charge the attempt's amount to the subscription's payment method and record the
    outcome at `now` (the caller's time; a test-clock subscription's is its clock's). Raises
    nothing for a decline (it is the attempt's outcome)."""
    async with database.sessions() as session:
        found = await repository.attempt_to_charge(session, attempt_id)
    if found is None:
        return ChargeOutcome.SETTLED
    attempt, invoice, subscription, method = found
    error: ProviderError | None = None
    charge_id: str | None = None
    try:
        if method is None:
            raise ProviderError(
                invoices.NO_PAYMENT_METHOD, "No payment method.", subscription.provider
            )
        adapter = await providers.get(Provider(subscription.provider))
        prefix = await providers.key_prefix()
        token = method.secret
        if method.kind == "billing_key":
            token = Vault(providers.settings.encryption_key).decrypt(method.secret)
        result = await adapter.charge(
            ChargeRequest(
                amount=attempt.amount,
                currency=invoice.currency,
                reference=reference(prefix, invoice.id, attempt.number),
                description=f"Invoice {invoices.invoice_number(invoice)}",
                idempotency_key=f"{prefix}invoice-{invoice.id}-attempt-{attempt.number}",
                payment_token=token,
                customer_key=method.provider_customer_key,
            )
        )
        charge_id = result.provider_charge_id
    except ProviderError as exc:
        error = exc
    except VaultError as exc:
        error = ProviderError("provider_not_configured", exc.message, subscription.provider)
    async with unit_of_work(database) as unit:
        return await record(
            unit, subscription, invoice.id, attempt_id, charge_id, error, policy, now
        )


async def record(
    unit: UnitOfWork,
    subscription: Subscription,
    invoice_id: int,
    attempt_id: int,
    charge_id: str | None,
    error: ProviderError | None,
    policy: dunning.Policy,
    now: datetime | None,
) -> ChargeOutcome:
    """Record in the unit what the provider answered for the PENDING attempt: `charge_id`
    (charged) or `error` (declined, or `provider_unavailable`: no answer, asked again later).
    SETTLED if the attempt is not pending any more (another run, or the provider's webhook,
    recorded it first). Locks the subscription, then the attempt and its invoice."""
    locked_subscription = await repository.subscription_by_id(
        unit.session, subscription.organization_id, subscription.id, lock=True
    )
    assert locked_subscription is not None
    subscription = locked_subscription
    locked = await repository.pending_attempt(unit.session, invoice_id, lock=True)
    if locked is None or locked.id != attempt_id:
        return ChargeOutcome.SETTLED
    row = await repository.invoice_by_id(
        unit.session, subscription.organization_id, invoice_id, lock=True
    )
    assert row is not None
    now_at = await subscription_now(unit.session, subscription.test_clock_id, now)
    if error is not None and error.code == "provider_unavailable":
        log.warning("invoice charge outcome unknown", invoice_id=row.id, attempt=locked.number)
        dunning.reschedule(
            subscription,
            await repository.open_invoices(unit.session, subscription.id),
            pending_attempt_at=now_at + UNKNOWN_OUTCOME_RETRY,
        )
        return ChargeOutcome.UNKNOWN
    if error is not None:
        suspended = await invoices.fail(
            unit, subscription, row, locked, error.code, error.message, now_at, policy
        )
        outcome = ChargeOutcome.SUSPENDED if suspended else ChargeOutcome.FAILED
    else:
        assert charge_id is not None
        await invoices.succeed(unit, subscription, row, locked, charge_id, now_at)
        outcome = ChargeOutcome.CHARGED
    await reschedule(unit, subscription)
    return outcome


async def reschedule(unit: UnitOfWork, subscription: Subscription) -> None:
    """Recompute when the run must next look at the subscription, from what is in the unit."""
    await unit.session.flush()
    open_rows, pending_at = await repository.open_invoices_and_pending(
        unit.session, subscription.id
    )
    dunning.reschedule(subscription, open_rows, pending_attempt_at=pending_at)
    await unit.session.flush()
