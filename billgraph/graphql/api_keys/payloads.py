import strawberry

from billgraph.graphql.api_keys.types import ApiKey


@strawberry.type
class CreateApiKeySuccess:
    api_key: ApiKey
    secret: str = strawberry.field(description="Shown only here: store it now.")


@strawberry.type
class RevokeApiKeySuccess:
    api_key: ApiKey
