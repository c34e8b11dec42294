"""API keys of the caller's organization, through services/api_keys.py."""

import strawberry

from billgraph.schema.context import Info
from billgraph.schema.errors import UserError, to_user_error
from billgraph.schema.inputs import CreateApiKeyInput
from billgraph.schema.node import db_id_of
from billgraph.schema.payloads import CreateApiKeySuccess, RevokeApiKeySuccess
from billgraph.schema.types import ApiKey
from billgraph.services import api_keys
from billgraph.services.errors import BillingError, NotFoundError


async def api_keys_of_viewer(info: Info) -> list[ApiKey]:
    async with info.context.database.sessions() as session:
        rows = await api_keys.list_for(session, info.context.organization_id)
    return [ApiKey.from_model(r) for r in rows]


async def create_api_key(info: Info, input: CreateApiKeyInput) -> CreateApiKeySuccess | UserError:
    context = info.context
    try:
        async with context.database.write_session() as session:
            created = await api_keys.create(
                session,
                context.organization_id,
                input.name,
                [api_keys.Scope(s.value.lower()) for s in input.scopes],
            )
    except BillingError as exc:
        return to_user_error(exc)
    return CreateApiKeySuccess(api_key=ApiKey.from_model(created.api_key), secret=created.secret)


async def revoke_api_key(info: Info, api_key_id: strawberry.ID) -> RevokeApiKeySuccess | UserError:
    context = info.context
    try:
        db_id = db_id_of(api_key_id, "ApiKey")
        if db_id is None:
            raise NotFoundError("API key not found.")
        revoked = await api_keys.revoke(context.database, context.organization_id, db_id)
    except BillingError as exc:
        return to_user_error(exc)
    return RevokeApiKeySuccess(api_key=ApiKey.from_model(revoked))
