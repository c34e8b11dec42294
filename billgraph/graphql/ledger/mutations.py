"""createLedgerEntry: the money-moving mutation, on the ledger's own-transaction fast path."""

import strawberry

from billgraph.core import errors
from billgraph.graphql.context import Info
from billgraph.graphql.errors import result
from billgraph.graphql.ledger.inputs import CreateLedgerEntryInput
from billgraph.graphql.ledger.payloads import CreateLedgerEntrySuccess
from billgraph.graphql.ledger.types import LedgerEntry
from billgraph.graphql.node import input_id
from billgraph.graphql.wallets.types import Wallet
from billgraph.ledger import service as ledger


@strawberry.type
class LedgerMutations:
    @strawberry.mutation(description="Credit or debit a customer's wallet, idempotently.")
    @result(
        "CreateLedgerEntryResult",
        CreateLedgerEntrySuccess,
        errors.InsufficientBalanceError,
        errors.IdempotencyConflictError,
        errors.NotFoundError,
        errors.ValidationError,
    )
    async def create_ledger_entry(
        self, info: Info, input: CreateLedgerEntryInput
    ) -> CreateLedgerEntrySuccess:
        context = info.context
        customer_id = input_id(input.customer_id, "Customer", "customerId", "Customer not found.")
        request = ledger.entry_request(
            context.organization_id,
            customer_id=customer_id,
            currency=input.currency.value,
            entry_type=input.entry_type,
            amount=input.amount,
            reason=input.reason,
            idempotency_key=input.idempotency_key,
        )
        posting = await ledger.commit_entry(context.database, request)
        return CreateLedgerEntrySuccess(
            entry=LedgerEntry.from_model(posting.entry),
            wallet=Wallet.from_model(posting.wallet),
            replayed=posting.replayed,
        )
