import strawberry

from billgraph.graphql.context import Info
from billgraph.graphql.node import db_id_of
from billgraph.graphql.wallets.types import Wallet


@strawberry.type
class WalletQueries:
    @strawberry.field
    async def wallet(self, info: Info, id: strawberry.ID) -> Wallet | None:
        db_id = db_id_of(id, "Wallet")
        if db_id is None:
            return None
        row = await info.context.loaders.wallet.load(db_id)
        return Wallet.from_model(row) if row is not None else None
