import strawberry

from billgraph.api_keys import service as api_keys
from billgraph.core import errors
from billgraph.core.unit import unit_of_work
from billgraph.graphql.api_keys.inputs import CreateApiKeyInput
from billgraph.graphql.api_keys.payloads import CreateApiKeySuccess, RevokeApiKeySuccess
from billgraph.graphql.api_keys.types import ApiKey
from billgraph.graphql.context import Info
from billgraph.graphql.errors import result
from billgraph.graphql.node import input_id


@strawberry.type
class ApiKeyMutations:
    @strawberry.mutation(description="Create an API key; its secret is in the result only.")
    @result("CreateApiKeyResult", CreateApiKeySuccess, errors.ValidationError)
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeySuccess:
        context = info.context
        async with unit_of_work(context.database) as unit:
            created = await api_keys.create(unit, context.organization_id, input.name, input.scopes)
        return CreateApiKeySuccess(
            api_key=ApiKey.from_model(created.api_key), secret=created.secret
        )

    @strawberry.mutation(description="Revoke an API key; it stops working at once.")
    @result("RevokeApiKeyResult", RevokeApiKeySuccess, errors.NotFoundError, errors.ValidationError)
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> RevokeApiKeySuccess:
        context = info.context
        db_id = input_id(id, "ApiKey", "id", "API key not found.")
        async with unit_of_work(context.database) as unit:
            revoked = await api_keys.revoke(unit, context.organization_id, db_id)
        return RevokeApiKeySuccess(api_key=ApiKey.from_model(revoked))
