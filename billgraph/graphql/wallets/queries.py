from typing import cast

import strawberry

from billgraph.graphql.context import Info
from billgraph.graphql.node import find_node
from billgraph.graphql.wallets.types import Wallet


@strawberry.type
class WalletQueries:
    @strawberry.field
    async def wallet(self, info: Info, id: strawberry.ID) -> Wallet | None:
        return cast(Wallet | None, await find_node(info, id, "Wallet"))
