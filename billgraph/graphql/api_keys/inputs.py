import strawberry

from billgraph.graphql.api_keys.types import ApiKeyScope


@strawberry.input
class CreateApiKeyInput:
    name: str
    scopes: list[ApiKeyScope]
