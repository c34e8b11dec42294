"""The Currency enum (the currency table's codes) and the `currencies` query."""

import strawberry

from billgraph.currencies import CURRENCIES, CurrencyCode

# The GraphQL enum is the currency table's own enum, declared to Strawberry.
strawberry.enum(
    CurrencyCode,
    name="Currency",
    description="ISO 4217 currency code. Amounts are integers in the currency's minor unit.",
)
Currency = CurrencyCode
# Members by code: a dict lookup, not an Enum call, for every row.
CURRENCY_BY_CODE = {c.value: c for c in Currency}


@strawberry.type(description="A currency billgraph knows, with its minor-unit exponent.")
class CurrencyInfo:
    code: Currency
    exponent: int = strawberry.field(description="Minor units per major unit: 10^exponent.")
    symbol: str
    name: str


@strawberry.type
class CurrencyQueries:
    @strawberry.field(description="Every currency billgraph knows, with its minor-unit exponent.")
    def currencies(self) -> list[CurrencyInfo]:
        return [
            CurrencyInfo(code=Currency(c.code), exponent=c.exponent, symbol=c.symbol, name=c.name)
            for c in CURRENCIES.values()
        ]
