"""Toss's webhooks about billing-key charges (auto-pay), at POST /webhooks/toss.

A PAYMENT_STATUS_CHANGED about a charge billgraph made for an invoice's attempt (its orderId
is the attempt's reference, charges.reference) settles that attempt if it is still PENDING:
the charge whose answer was lost (a timeout, an outage) is recorded when Toss says what became
of it, instead of at the retry an hour later. DONE is a charge, ABORTED a decline; an attempt
settled already, or a reference another installation made, is acknowledged and ignored. The
event goes in the checkout pipeline's inbox in the same unit, so a duplicate changes nothing.
Every other Toss event goes on to the checkout pipeline.
"""

from collections.abc import Mapping

from billgraph.adapters.base import EventKind, Provider, WebhookEvent
from billgraph.billing import charges, dunning, repository
from billgraph.billing.charges import ChargeOutcome
from billgraph.checkout import webhooks
from billgraph.checkout.providers import Providers
from billgraph.core.errors import ProviderError
from billgraph.core.unit import UnitOfWork, unit_of_work
from billgraph.db.engine import Database
from billgraph.db.models import Invoice, Subscription
from billgraph.logs import get_logger

log = get_logger("billgraph.billing.toss_charges")

TOSS = Provider.TOSS.value


async def receive(
    database: Database,
    providers: Providers,
    body: bytes,
    payload: object,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
) -> webhooks.Outcome:
    """Verify the delivery (the adapter fetches the payment from Toss), then settle the
    charge it is about, or hand it to the checkout pipeline. Raises WebhookRefused,
    ProviderError (Toss not configured, or it could not be asked)."""
    event = await webhooks.verify(providers.toss(), body, payload, headers, now)
    if event.provider_invoice_id is None:
        return await webhooks.handle(database, event)
    attempt = charges.attempt_of(event.provider_invoice_id, await providers.key_prefix())
    policy = dunning.policy(providers.settings)
    try:
        async with unit_of_work(database) as unit:
            outcome = webhooks.Outcome.IGNORED
            if attempt is not None:
                outcome = await _settle(unit, event, *attempt, policy)
            await webhooks.record(unit, event, outcome, None)
    except webhooks.DuplicateEvent:
        return webhooks.Outcome.DUPLICATE
    return outcome


async def _settle(
    unit: UnitOfWork,
    event: WebhookEvent,
    invoice_id: int,
    number: int,
    policy: dunning.Policy,
) -> webhooks.Outcome:
    invoice = await unit.session.get(Invoice, invoice_id)
    attempt = next(
        (a for a in await repository.attempts(unit.session, invoice_id) if a.number == number),
        None,
    )
    if invoice is None or invoice.subscription_id is None or attempt is None:
        return webhooks.Outcome.IGNORED
    subscription = await unit.session.get_one(Subscription, invoice.subscription_id)
    if subscription.provider != TOSS:
        return webhooks.Outcome.IGNORED
    charge_id: str | None = None
    error: ProviderError | None = None
    if event.kind is EventKind.PAID:
        if event.amount != attempt.amount or event.currency != invoice.currency:
            raise webhooks.WebhookRefused(
                422, "AMOUNT_MISMATCH", "The payment's amount or currency is not the charge's."
            )
        charge_id = event.provider_payment_id
    elif event.kind is EventKind.PAYMENT_FAILED and event.error is not None:
        error = ProviderError(event.error.code, event.error.message, TOSS)
    else:
        return webhooks.Outcome.IGNORED
    recorded = await charges.record(
        unit, subscription, invoice.id, attempt.id, charge_id, error, policy, None
    )
    if recorded is ChargeOutcome.SETTLED:
        return webhooks.Outcome.IGNORED
    log.info("invoice charge settled by Toss's webhook", invoice_id=invoice.id, outcome=recorded)
    return webhooks.Outcome.CHARGE_SETTLED
