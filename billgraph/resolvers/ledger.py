"""createLedgerEntry: the money-moving mutation, through services/ledger.py."""

from billgraph.schema.context import Info
from billgraph.schema.errors import UserError, to_user_error
from billgraph.schema.inputs import CreateLedgerEntryInput
from billgraph.schema.node import db_id_of
from billgraph.schema.payloads import CreateLedgerEntrySuccess
from billgraph.schema.types import LedgerEntry, Wallet
from billgraph.services import ledger
from billgraph.services.errors import BillingError, NotFoundError


async def create_ledger_entry(
    info: Info, input: CreateLedgerEntryInput
) -> CreateLedgerEntrySuccess | UserError:
    context = info.context
    try:
        customer_id = db_id_of(input.customer_id, "Customer", "customerId")
        if customer_id is None:
            raise NotFoundError("Customer not found.")
        posting = await ledger.post_entry(
            context.database,
            context.organization_id,
            customer_id=customer_id,
            currency=input.currency.value,
            entry_type=ledger.EntryType(input.entry_type.value),
            amount=input.amount,
            reason=input.reason,
            idempotency_key=input.idempotency_key,
        )
    except BillingError as exc:
        return to_user_error(exc)
    return CreateLedgerEntrySuccess(
        entry=LedgerEntry.from_model(posting.entry),
        wallet=Wallet.from_model(posting.wallet),
        replayed=posting.replayed,
    )
