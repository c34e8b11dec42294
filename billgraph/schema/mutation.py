"""The root Mutation type. Each mutation returns a union of its success and typed errors."""

import strawberry

from billgraph.resolvers import api_keys, customers, ledger, wallets
from billgraph.schema.context import Info
from billgraph.schema.inputs import (
    CreateApiKeyInput,
    CreateCustomerInput,
    CreateLedgerEntryInput,
    UpdateCustomerInput,
    UpdateWalletInput,
)
from billgraph.schema.payloads import (
    CreateApiKeyResult,
    CreateCustomerResult,
    CreateLedgerEntryResult,
    DeleteCustomerResult,
    RevokeApiKeyResult,
    UpdateCustomerResult,
    UpdateWalletResult,
)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create a customer with a zero-balance wallet.")
    async def create_customer(self, info: Info, input: CreateCustomerInput) -> CreateCustomerResult:
        return await customers.create_customer(info, input)  # type: ignore[return-value]

    @strawberry.mutation
    async def update_customer(self, info: Info, input: UpdateCustomerInput) -> UpdateCustomerResult:
        return await customers.update_customer(info, input)  # type: ignore[return-value]

    @strawberry.mutation(
        description="Soft-delete: personal data is erased, the ledger stays, the email is free again."
    )
    async def delete_customer(self, info: Info, id: strawberry.ID) -> DeleteCustomerResult:
        return await customers.delete_customer(info, id)  # type: ignore[return-value]

    @strawberry.mutation(description="Credit or debit a customer's wallet, idempotently.")
    async def create_ledger_entry(
        self, info: Info, input: CreateLedgerEntryInput
    ) -> CreateLedgerEntryResult:
        return await ledger.create_ledger_entry(info, input)  # type: ignore[return-value]

    @strawberry.mutation(description="Set or clear a wallet's low-balance threshold.")
    async def update_wallet(self, info: Info, input: UpdateWalletInput) -> UpdateWalletResult:
        return await wallets.update_wallet(info, input)  # type: ignore[return-value]

    @strawberry.mutation(description="Create an API key; its secret is in the result only.")
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyResult:
        return await api_keys.create_api_key(info, input)  # type: ignore[return-value]

    @strawberry.mutation(description="Revoke an API key; it stops working at once.")
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> RevokeApiKeyResult:
        return await api_keys.revoke_api_key(info, id)  # type: ignore[return-value]
