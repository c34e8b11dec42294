"""Organizations: the tenants. Every other record belongs to exactly one."""

from dataclasses import dataclass

from billgraph.api_keys import service as api_keys
from billgraph.core import validation
from billgraph.core.unit import UnitOfWork
from billgraph.db.models import Organization, utcnow


@dataclass(frozen=True)
class CreatedOrganization:
    organization: Organization
    api_key: api_keys.CreatedApiKey


async def create(unit: UnitOfWork, name: str, default_currency: str = "USD") -> CreatedOrganization:
    """Create an organization with a read+write API key (its secret is only in the result).
    Raises ValidationError."""
    checked_name = validation.text(name, "name", max_length=200, required=True)
    assert checked_name is not None
    organization = Organization(
        name=checked_name,
        default_currency=validation.currency(default_currency, "currency"),
        created_at=utcnow(),
    )
    unit.session.add(organization)
    await unit.session.flush()
    key = await api_keys.create(
        unit, organization.id, "default", [api_keys.Scope.READ, api_keys.Scope.WRITE]
    )
    return CreatedOrganization(organization=organization, api_key=key)
