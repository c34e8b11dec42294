"""Customers: created with a zero-balance wallet, updated, soft-deleted.

A deleted customer's row stays (its ledger entries point to it), its personal data is erased,
it disappears from every query, and its email and external id become free again.
"""

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.core import validation
from billgraph.core.errors import ConflictError, NotFoundError
from billgraph.core.unit import UnitOfWork
from billgraph.customers import repository
from billgraph.db.models import Customer, Wallet, utcnow
from billgraph.wallets.repository import open_wallet


class _Unset:
    """Marks an update field the caller did not send (None means "clear it")."""


UNSET = _Unset()


@dataclass(frozen=True)
class CreatedCustomer:
    customer: Customer
    wallet: Wallet


async def get(session: AsyncSession, organization_id: int, customer_id: int) -> Customer:
    """A live customer of the organization; NotFoundError otherwise (also for other tenants)."""
    customer = await repository.live_customer(session, organization_id, customer_id)
    if customer is None:
        raise NotFoundError("Customer not found.")
    return customer


async def _ensure_unique(
    session: AsyncSession,
    organization_id: int,
    email: str | None,
    external_id: str | None,
    exclude_id: int | None = None,
) -> None:
    holders = await repository.holders_of(
        session,
        organization_id,
        email=email.lower() if email is not None else None,
        external_id=external_id,
        exclude_id=exclude_id,
    )
    for other in holders:
        if email is not None and other.email_normalized == email.lower():
            raise ConflictError("A customer with this email already exists.", "email")
        raise ConflictError("A customer with this external id already exists.", "externalId")


async def create(
    unit: UnitOfWork,
    organization_id: int,
    *,
    email: str,
    name: str | None = None,
    external_id: str | None = None,
    currency: str,
) -> CreatedCustomer:
    """Create a customer and its wallet in `currency` (balance 0), in the unit's transaction.

    Raises ValidationError for bad input, ConflictError when the email (case-insensitive) or
    the external id is already used in the organization.
    """
    checked_email = validation.email(email)
    checked_name = validation.text(name, "name", max_length=200)
    checked_external_id = validation.text(external_id, "externalId", max_length=200)
    checked_currency = validation.currency(currency)
    await _ensure_unique(unit.session, organization_id, checked_email, checked_external_id)
    now = utcnow()
    customer = Customer(
        organization_id=organization_id,
        email=checked_email,
        email_normalized=checked_email.lower(),
        name=checked_name,
        external_id=checked_external_id,
        created_at=now,
        updated_at=now,
    )
    unit.session.add(customer)
    try:
        await unit.session.flush()
    except IntegrityError as exc:  # a concurrent create won the race for the same email
        raise ConflictError("A customer with this email or external id already exists.") from exc
    wallet = await open_wallet(unit.session, organization_id, customer.id, checked_currency)
    return CreatedCustomer(customer=customer, wallet=wallet)


async def update(
    unit: UnitOfWork,
    organization_id: int,
    customer_id: int,
    *,
    email: str | _Unset = UNSET,
    name: str | _Unset | None = UNSET,
    external_id: str | _Unset | None = UNSET,
) -> Customer:
    """Change the fields that were given; None clears name or external id. Raises
    NotFoundError, ValidationError, ConflictError."""
    customer = await get(unit.session, organization_id, customer_id)
    new_email = validation.email(email) if isinstance(email, str) else None
    new_external_id = (
        None
        if isinstance(external_id, _Unset)
        else validation.text(external_id, "externalId", max_length=200)
    )
    await _ensure_unique(unit.session, organization_id, new_email, new_external_id, customer.id)
    if new_email is not None:
        customer.email = new_email
        customer.email_normalized = new_email.lower()
    if not isinstance(name, _Unset):
        customer.name = validation.text(name, "name", max_length=200)
    if not isinstance(external_id, _Unset):
        customer.external_id = new_external_id
    customer.updated_at = utcnow()
    try:
        await unit.session.flush()
    except IntegrityError as exc:
        raise ConflictError("A customer with this email or external id already exists.") from exc
    return customer


async def delete(unit: UnitOfWork, organization_id: int, customer_id: int) -> Customer:
    """Soft-delete: erase personal data, keep the row and its wallets and ledger. Raises
    NotFoundError."""
    customer = await get(unit.session, organization_id, customer_id)
    now = utcnow()
    customer.email = None
    customer.email_normalized = None
    customer.name = None
    customer.external_id = None
    customer.deleted_at = now
    customer.updated_at = now
    await unit.session.flush()
    return customer
