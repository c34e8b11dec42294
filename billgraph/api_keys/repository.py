"""The API keys' queries."""

from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from billgraph.db.models import ApiKey, Organization

# Built once: this runs on every request.
_KEY_COLUMNS = tuple(ApiKey.__table__.columns)
_ORGANIZATION_COLUMNS = tuple(Organization.__table__.columns)
_BY_SECRET_HASH = (
    select(*_KEY_COLUMNS, *_ORGANIZATION_COLUMNS)
    .select_from(ApiKey.__table__.join(Organization.__table__))
    .where(ApiKey.secret_hash == bindparam("secret_hash"), ApiKey.revoked_at.is_(None))
)


async def live_key_by_hash(
    connection: AsyncConnection, secret_hash: str
) -> tuple[ApiKey, Organization] | None:
    """The unrevoked key with this secret hash and its organization. Core on a plain
    connection: this runs on every request, and an ORM session costs more than the query."""
    row = (await connection.execute(_BY_SECRET_HASH, {"secret_hash": secret_hash})).first()
    if row is None:
        return None
    values = row._mapping
    api_key = ApiKey(**{c.key: values[c] for c in _KEY_COLUMNS})
    organization = Organization(**{c.key: values[c] for c in _ORGANIZATION_COLUMNS})
    return api_key, organization


async def touch(session: AsyncSession, api_key_id: int, now: datetime) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == api_key_id).values(last_used_at=now))


async def keys_of(session: AsyncSession, organization_id: int) -> list[ApiKey]:
    return list(
        await session.scalars(
            select(ApiKey).where(ApiKey.organization_id == organization_id).order_by(ApiKey.id)
        )
    )


async def key_of(session: AsyncSession, organization_id: int, api_key_id: int) -> ApiKey | None:
    return await session.scalar(
        select(ApiKey).where(ApiKey.id == api_key_id, ApiKey.organization_id == organization_id)
    )
