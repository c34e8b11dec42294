"""API keys: created with their secret shown once, stored as a SHA-256 hash, revocable.

Keys are long random tokens, so a fast hash is enough (nothing to brute-force); the hash is
what lets a request be authenticated with one indexed lookup.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache

from billgraph.api_keys import repository
from billgraph.core import validation
from billgraph.core.errors import NotFoundError, ValidationError
from billgraph.core.unit import UnitOfWork
from billgraph.db.engine import Database
from billgraph.db.models import ApiKey, Organization, utcnow
from billgraph.live.events import ApiKeyRevoked

SECRET_PREFIX = "bgk_"
# lastUsedAt is refreshed at most this often, so authenticating stays a read.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class Scope(StrEnum):
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


# Asked on every request; keys share a few distinct scope lists.
@lru_cache(maxsize=64)
def parse_scopes(stored: str) -> frozenset[Scope]:
    return frozenset(Scope(s) for s in stored.split(",") if s)


async def create(
    unit: UnitOfWork, organization_id: int, name: str, scopes: list[Scope]
) -> CreatedApiKey:
    """Create a key for the organization. The secret is returned here and never again.
    Raises ValidationError."""
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
    unit.session.add(api_key)
    await unit.session.flush()
    return CreatedApiKey(api_key=api_key, secret=secret)


def well_formed(secret: str) -> bool:
    """Whether `secret` could be one of ours: secrets are ASCII, anything else (a lone
    surrogate too) is unknown without a lookup."""
    return secret.startswith(SECRET_PREFIX) and len(secret) <= 200 and secret.isascii()


async def principal_of(database: Database, secret: str) -> Principal | None:
    """The principal for a secret, or None if unknown or revoked. A read: checked against the
    database on every call, so a revoked key stops working at once."""
    if not well_formed(secret):
        return None
    async with database.autocommit.connect() as connection:
        found = await repository.live_key_by_hash(connection, hash_secret(secret))
    return None if found is None else Principal(api_key=found[0], organization=found[1])


def needs_touch(principal: Principal) -> bool:
    """Whether lastUsedAt is older than its resolution, so the caller should touch it."""
    last_used_at = principal.api_key.last_used_at
    return last_used_at is None or utcnow() - last_used_at >= LAST_USED_RESOLUTION


async def touch(unit: UnitOfWork, principal: Principal) -> None:
    """Record that the key was used now."""
    now = utcnow()
    principal.api_key.last_used_at = now
    await repository.touch(unit.session, principal.api_key.id, now)


async def revoke(unit: UnitOfWork, organization_id: int, api_key_id: int) -> ApiKey:
    """Revoke a key of the organization. Idempotent. It stops working on the next request,
    and once the unit commits its open sockets are closed on every replica. Raises
    NotFoundError (also for another organization's key)."""
    api_key = await repository.key_of(unit.session, organization_id, api_key_id)
    if api_key is None:
        raise NotFoundError("API key not found.")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
    unit.after_commit(ApiKeyRevoked(organization_id=organization_id, api_key_id=api_key_id))
    return api_key
