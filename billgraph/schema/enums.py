"""GraphQL enums. Currency is generated from the currency table."""

from enum import Enum

import strawberry

from billgraph.currencies import CURRENCIES

Currency = strawberry.enum(
    Enum("Currency", {code: code for code in CURRENCIES}),  # type: ignore[misc]
    description="ISO 4217 currency code. Amounts are integers in the currency's minor unit.",
)


@strawberry.enum(description="Whether a ledger entry adds to or takes from a wallet.")
class EntryType(Enum):
    CREDIT = "CREDIT"
    DEBIT = "DEBIT"


@strawberry.enum(description="What an API key may do: READ queries, WRITE mutations.")
class ApiKeyScope(Enum):
    READ = "READ"
    WRITE = "WRITE"
