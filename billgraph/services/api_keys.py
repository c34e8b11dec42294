"""API keys: created with their secret shown once, stored as a SHA-256 hash, revocable.

Keys are long random tokens, so a fast hash is enough (nothing to brute-force); the hash is
what lets a request be authenticated with one indexed lookup.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.db.engine import Database
from billgraph.db.models import ApiKey, Organization, utcnow
from billgraph.events import ApiKeyRevoked
from billgraph.services import validation
from billgraph.services.errors import NotFoundError, ValidationError

SECRET_PREFIX = "bgk_"
# lastUsedAt is refreshed at most this often, so authenticating stays a read.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class Scope(str, Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    secret: str


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key and its organization."""

    api_key: ApiKey
    organization: Organization

    @property
    def scopes(self) -> frozenset[Scope]:
        return parse_scopes(self.api_key.scopes)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(stored: str) -> frozenset[Scope]:
    return frozenset(Scope(s) for s in stored.split(",") if s)


async def create(
    session: AsyncSession, organization_id: int, name: str, scopes: list[Scope]
) -> CreatedApiKey:
    """Create a key for the organization. The secret is returned here and never again."""
    checked_name = validation.text(name, "name", max_length=200, required=True)
    if not scopes:
        raise ValidationError("At least one scope is required.", "scopes")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        organization_id=organization_id,
        name=checked_name,
        prefix=secret[:12],
        secret_hash=hash_secret(secret),
        scopes=",".join(sorted({s.value for s in scopes})),
        created_at=utcnow(),
    )
    session.add(api_key)
    await session.flush()
    return CreatedApiKey(api_key=api_key, secret=secret)


# Built once: this runs on every request.
_KEY_COLUMNS = tuple(ApiKey.__table__.columns)
_ORGANIZATION_COLUMNS = tuple(Organization.__table__.columns)
_BY_SECRET_HASH = (
    select(*_KEY_COLUMNS, *_ORGANIZATION_COLUMNS)
    .select_from(ApiKey.__table__.join(Organization.__table__))
    .where(ApiKey.secret_hash == bindparam("secret_hash"), ApiKey.revoked_at.is_(None))
)


async def authenticate(database: Database, secret: str) -> Principal | None:
    """The principal for a secret, or None if unknown or revoked. Touches lastUsedAt.

    Checked against the database on every call, so a revoked key stops working at once.
    """
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 200:
        return None
    # Core on a plain connection: this runs on every request, and an ORM session costs more
    # than the query.
    async with database.autocommit.connect() as connection:
        row = (
            await connection.execute(_BY_SECRET_HASH, {"secret_hash": hash_secret(secret)})
        ).first()
    if row is None:
        return None
    values = row._mapping
    api_key = ApiKey(**{c.key: values[c] for c in _KEY_COLUMNS})
    organization = Organization(**{c.key: values[c] for c in _ORGANIZATION_COLUMNS})
    now = utcnow()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        api_key.last_used_at = now
        async with database.write_session() as session:
            await session.execute(
                update(ApiKey).where(ApiKey.id == api_key.id).values(last_used_at=now)
            )
    return Principal(api_key=api_key, organization=organization)


async def list_for(session: AsyncSession, organization_id: int) -> list[ApiKey]:
    return list(
        await session.scalars(
            select(ApiKey).where(ApiKey.organization_id == organization_id).order_by(ApiKey.id)
        )
    )


async def revoke(database: Database, organization_id: int, api_key_id: int) -> ApiKey:
    """Revoke a key of the organization. Idempotent. It stops working on the next request,
    and once committed its open sockets are closed on every replica."""
    async with database.write_session() as session:
        api_key = await session.scalar(
            select(ApiKey).where(ApiKey.id == api_key_id, ApiKey.organization_id == organization_id)
        )
        if api_key is None:
            raise NotFoundError("API key not found.")
        if api_key.revoked_at is None:
            api_key.revoked_at = utcnow()
    database.events.publish(ApiKeyRevoked(organization_id=organization_id, api_key_id=api_key_id))
    return api_key
