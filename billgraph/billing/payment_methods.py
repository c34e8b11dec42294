"""Saved payment methods: the sandbox's test card and Toss billing keys (stored encrypted,
never returned, never logged). The checkout that collects one (the sandbox page, Toss's
billing authorization) saves it here, then billing.subscriptions.attach_payment_method."""

from billgraph.adapters import sandbox
from billgraph.adapters.base import Provider
from billgraph.adapters.toss import BillingKey
from billgraph.core.errors import NotFoundError, ValidationError
from billgraph.core.secrets import Vault
from billgraph.core.unit import UnitOfWork
from billgraph.customers import repository as customer_repository
from billgraph.db.models import PaymentMethod, utcnow


async def _customer(unit: UnitOfWork, organization_id: int, customer_id: int) -> None:
    if await customer_repository.live_customer(unit.session, organization_id, customer_id) is None:
        raise NotFoundError("Customer not found.")


async def save_sandbox_card(
    unit: UnitOfWork, organization_id: int, customer_id: int, card_number: str
) -> PaymentMethod:
    """Save a sandbox test card. Raises NotFoundError, ValidationError (not a test card, or
    one that declines being saved)."""
    number = "".join(card_number.split())
    refusal = sandbox.can_save(number)
    if refusal is not None:
        raise ValidationError(refusal.message, "cardNumber")
    await _customer(unit, organization_id, customer_id)
    method = PaymentMethod(
        organization_id=organization_id,
        customer_id=customer_id,
        provider=Provider.SANDBOX.value,
        kind="card",
        secret=number,  # a test card: no real card number ever reaches the sandbox
        brand="visa" if number.startswith("4") else "card",
        last4=number[-4:],
        created_at=utcnow(),
    )
    unit.session.add(method)
    await unit.session.flush()
    return method


async def save_billing_key(
    unit: UnitOfWork, vault: Vault, organization_id: int, customer_id: int, key: BillingKey
) -> PaymentMethod:
    """Save a Toss billing key, encrypted. Raises NotFoundError."""
    await _customer(unit, organization_id, customer_id)
    digits = "".join(ch for ch in key.card_number or "" if ch.isdigit())
    method = PaymentMethod(
        organization_id=organization_id,
        customer_id=customer_id,
        provider=Provider.TOSS.value,
        kind="billing_key",
        secret=vault.encrypt(key.billing_key),
        provider_customer_key=key.customer_key,
        brand=key.card_issuer_code,
        last4=digits[-4:] or None,
        created_at=utcnow(),
    )
    unit.session.add(method)
    await unit.session.flush()
    return method
