"""API keys from requests: the bearer token of a header, and the principal it names."""

from billgraph.api_keys import service as api_keys
from billgraph.api_keys.cache import PrincipalCache
from billgraph.api_keys.service import Principal
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def authenticate(
    database: Database, secret: str, cache: PrincipalCache | None = None
) -> Principal | None:
    """The principal for a secret, or None if unknown or revoked; records the key's use (at
    most once per LAST_USED_RESOLUTION, so authenticating stays a read). With a `cache`, a
    key seen a moment ago is believed without its lookup (revocations evict it at once)."""
    if cache is None or not api_keys.well_formed(secret):
        principal = await api_keys.principal_of(database, secret)
    else:
        secret_hash = api_keys.hash_secret(secret)
        principal = cache.get(secret_hash)
        if principal is None:
            generation = cache.generation  # a revocation from now on keeps this one out
            principal = await api_keys.principal_of(database, secret)
            if principal is not None:
                cache.put(secret_hash, principal, generation)
    if principal is not None and api_keys.needs_touch(principal):
        async with unit_of_work(database) as unit:
            await api_keys.touch(unit, principal)
    return principal
