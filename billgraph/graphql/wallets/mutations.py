import strawberry

from billgraph.core import errors
from billgraph.core.unit import unit_of_work
from billgraph.db import models
from billgraph.graphql.context import Info
from billgraph.graphql.errors import result
from billgraph.graphql.node import input_id
from billgraph.graphql.wallets.inputs import UpdateWalletInput
from billgraph.graphql.wallets.payloads import UpdateWalletSuccess
from billgraph.graphql.wallets.types import Wallet
from billgraph.wallets import service as wallets
from billgraph.wallets.repository import WalletRow


@strawberry.type
class WalletMutations:
    @strawberry.mutation(description="Set or clear a wallet's low-balance threshold.")
    @result("UpdateWalletResult", UpdateWalletSuccess, errors.NotFoundError, errors.ValidationError)
    async def update_wallet(self, info: Info, input: UpdateWalletInput) -> UpdateWalletSuccess:
        context = info.context
        db_id = input_id(input.wallet_id, "Wallet", "walletId", "Wallet not found.")
        row: models.Wallet | WalletRow | None
        if input.low_balance_threshold is strawberry.UNSET:  # nothing to change
            row = await context.loaders.wallet.load(db_id)
            if row is None:
                raise errors.NotFoundError("Wallet not found.")
        else:
            async with unit_of_work(context.database) as unit:
                row = await wallets.set_low_balance_threshold(
                    unit, context.organization_id, db_id, input.low_balance_threshold
                )
        return UpdateWalletSuccess(wallet=Wallet.from_model(row))
