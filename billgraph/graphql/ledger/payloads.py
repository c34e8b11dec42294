import strawberry

from billgraph.graphql.ledger.types import LedgerEntry
from billgraph.graphql.wallets.types import Wallet


@strawberry.type
class CreateLedgerEntrySuccess:
    entry: LedgerEntry
    wallet: Wallet
    replayed: bool = strawberry.field(
        description="True when this key was already used with the same input: nothing new was written."
    )
