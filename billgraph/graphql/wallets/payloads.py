import strawberry

from billgraph.graphql.wallets.types import Wallet


@strawberry.type
class UpdateWalletSuccess:
    wallet: Wallet
