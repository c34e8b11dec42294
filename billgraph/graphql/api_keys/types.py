"""ApiKey and the ApiKeyScope enum (the service's own scopes)."""

from datetime import datetime

import strawberry

from billgraph.api_keys import repository
from billgraph.api_keys.service import Scope
from billgraph.db import models
from billgraph.graphql.context import Info
from billgraph.graphql.node import Node, node_loader, to_global_id

# The GraphQL enum is the service's own scopes, declared to Strawberry.
strawberry.enum(
    Scope, name="ApiKeyScope", description="What an API key may do: READ queries, WRITE mutations."
)
ApiKeyScope = Scope


@strawberry.type(description="A partner's credential. The secret is shown only at creation.")
class ApiKey(Node):
    name: str
    prefix: str = strawberry.field(description="The secret's first characters, to tell keys apart.")
    scopes: list[ApiKeyScope]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_model(cls, row: models.ApiKey) -> "ApiKey":
        return cls(
            id=to_global_id("ApiKey", row.id),
            name=row.name,
            prefix=row.prefix,
            scopes=[Scope(s) for s in row.scopes.split(",")],
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )


async def api_keys_of(info: Info) -> list[ApiKey]:
    """The caller's organization's keys, oldest first."""
    async with info.context.database.sessions() as session:
        rows = await repository.keys_of(session, info.context.organization_id)
    return [ApiKey.from_model(r) for r in rows]


@node_loader("ApiKey")
async def _load(info: Info, db_id: int) -> ApiKey | None:
    async with info.context.database.sessions() as session:
        row = await repository.key_of(session, info.context.organization_id, db_id)
    return ApiKey.from_model(row) if row is not None else None
