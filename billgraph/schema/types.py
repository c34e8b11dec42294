"""The graph's object types. Each field that needs data names the resolver behind it."""

from datetime import datetime

import strawberry

from billgraph.db import models
from billgraph.schema.context import Info
from billgraph.schema.enums import ApiKeyScope, Currency, EntryType
from billgraph.schema.node import Node, to_global_id
from billgraph.schema.pagination import Connection
from billgraph.schema.scalars import BigInt


@strawberry.type(description="A tenant of billgraph: its customers, wallets and API keys.")
class Organization(Node):
    db_id: strawberry.Private[int]
    name: str
    default_currency: Currency
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.Organization) -> "Organization":
        return cls(
            id=to_global_id("Organization", row.id),
            db_id=row.id,
            name=row.name,
            default_currency=Currency[row.default_currency],
            created_at=row.created_at,
        )

    @strawberry.field(
        description="Customers in creation order; `email` filters case-insensitively."
    )
    async def customers(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        email: str | None = None,
    ) -> Connection["Customer"]:
        return await customer_resolvers.customers(info, first=first, after=after, email=email)

    @strawberry.field(description="The organization's API keys, without their secrets.")
    async def api_keys(self, info: Info) -> list["ApiKey"]:
        return await api_key_resolvers.api_keys_of_viewer(info)


@strawberry.type(description="A customer of the organization, with one wallet per currency.")
class Customer(Node):
    db_id: strawberry.Private[int]
    email: str
    name: str | None
    external_id: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, row: models.Customer) -> "Customer":
        assert row.email is not None  # deleted customers never reach the graph
        return cls(
            id=to_global_id("Customer", row.id),
            db_id=row.id,
            email=row.email,
            name=row.name,
            external_id=row.external_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field
    def organization(self, info: Info) -> Organization:
        return customer_resolvers.organization(info)

    @strawberry.field(description="The customer's wallets, one per currency, oldest first.")
    async def wallets(self, info: Info) -> list["Wallet"]:
        return await wallet_resolvers.customer_wallets(info, self.db_id)

    @strawberry.field(description="The customer's wallet in `currency`, if it has one.")
    async def wallet(self, info: Info, currency: Currency) -> "Wallet | None":
        return await wallet_resolvers.customer_wallet(info, self.db_id, currency.value)


@strawberry.type(description="A customer's balance in one currency, and its ledger.")
class Wallet(Node):
    db_id: strawberry.Private[int]
    customer_db_id: strawberry.Private[int]
    currency: Currency
    balance: BigInt = strawberry.field(description="In the currency's minor unit.")
    version: BigInt = strawberry.field(
        description="The sequence of the wallet's latest ledger entry (0 before any)."
    )
    low_balance_threshold: BigInt | None = strawberry.field(
        description="A debit that takes the balance from at-or-above this to below it raises "
        "walletLowBalance. Null: no alerts."
    )
    updated_at: datetime

    @classmethod
    def from_model(cls, row: models.Wallet) -> "Wallet":
        return cls(
            id=to_global_id("Wallet", row.id),
            db_id=row.id,
            customer_db_id=row.customer_id,
            currency=Currency[row.currency],
            balance=BigInt(row.balance),
            version=BigInt(row.version),
            low_balance_threshold=(
                None if row.low_balance_threshold is None else BigInt(row.low_balance_threshold)
            ),
            updated_at=row.updated_at,
        )

    @strawberry.field
    async def customer(self, info: Info) -> Customer:
        return await customer_resolvers.customer_of_wallet(info, self.customer_db_id)

    @strawberry.field(description="The wallet's ledger, newest entry first.")
    async def ledger_entries(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        entry_type: EntryType | None = None,
    ) -> Connection["LedgerEntry"]:
        return await wallet_resolvers.ledger_entries(
            info, self.db_id, first=first, after=after, entry_type=entry_type
        )


@strawberry.type(description="One append-only movement of money on a wallet.")
class LedgerEntry(Node):
    db_id: strawberry.Private[int]
    wallet_db_id: strawberry.Private[int]
    entry_type: EntryType
    amount: BigInt
    currency: Currency
    balance_after: BigInt = strawberry.field(description="The wallet's balance right after it.")
    sequence: BigInt = strawberry.field(description="Position in the wallet's ledger: 1, 2, 3...")
    reason: str | None
    idempotency_key: str
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.LedgerEntry) -> "LedgerEntry":
        return cls(
            id=to_global_id("LedgerEntry", row.id),
            db_id=row.id,
            wallet_db_id=row.wallet_id,
            entry_type=EntryType(row.entry_type),
            amount=BigInt(row.amount),
            currency=Currency[row.currency],
            balance_after=BigInt(row.balance_after),
            sequence=BigInt(row.sequence),
            reason=row.reason,
            idempotency_key=row.idempotency_key,
            created_at=row.created_at,
        )

    @strawberry.field
    async def wallet(self, info: Info) -> Wallet:
        return await wallet_resolvers.wallet_of_entry(info, self.wallet_db_id)


@strawberry.type(description="A partner's credential. The secret is shown only at creation.")
class ApiKey(Node):
    name: str
    prefix: str = strawberry.field(description="The secret's first characters, to tell keys apart.")
    scopes: list[ApiKeyScope]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_model(cls, row: models.ApiKey) -> "ApiKey":
        return cls(
            id=to_global_id("ApiKey", row.id),
            name=row.name,
            prefix=row.prefix,
            scopes=[ApiKeyScope[s.upper()] for s in row.scopes.split(",")],
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )


@strawberry.type(description="A currency billgraph knows, with its minor-unit exponent.")
class CurrencyInfo:
    code: Currency
    exponent: int = strawberry.field(description="Minor units per major unit: 10^exponent.")
    symbol: str
    name: str


# Resolvers build these types, so they are imported once the types exist; the methods above
# look them up when called.
from billgraph.resolvers import api_keys as api_key_resolvers
from billgraph.resolvers import customers as customer_resolvers
from billgraph.resolvers import wallets as wallet_resolvers
