import strawberry

from billgraph.graphql.scalars import BigInt


@strawberry.input
class UpdateWalletInput:
    wallet_id: strawberry.ID
    low_balance_threshold: BigInt | None = strawberry.field(
        default=strawberry.UNSET,
        description="In minor units; null clears it, leaving it out keeps it.",
    )
