import strawberry

from billgraph.graphql.context import Info
from billgraph.graphql.node import db_id_of
from billgraph.graphql.wallets.types import Wallet, load_paged_wallet


@strawberry.type
class WalletQueries:
    @strawberry.field
    async def wallet(self, info: Info, id: strawberry.ID) -> Wallet | None:
        db_id = db_id_of(id, "Wallet")
        return None if db_id is None else await load_paged_wallet(info, db_id)
