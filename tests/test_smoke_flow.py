from tests.support.graph import Tenant


async def test_credit_then_debit_moves_the_balance(tenant: Tenant) -> None:
    created = await tenant.create_customer()
    customer_id = created["customer"]["id"]
    credit = await tenant.post(customer_id, 1000)
    assert credit["__typename"] == "CreateLedgerEntrySuccess"
    debit = await tenant.post(customer_id, 400, "DEBIT")
    assert debit["wallet"]["balance"] == 600
    data = await tenant.data(
        """{ viewer { customers(first: 10) { edges { node { wallets { balance
            ledgerEntries(first: 10) { edges { node { amount entryType balanceAfter } } } } } } } } }"""
    )
    wallet = data["viewer"]["customers"]["edges"][0]["node"]["wallets"][0]
    assert wallet["balance"] == 600
    assert [e["node"]["amount"] for e in wallet["ledgerEntries"]["edges"]] == [400, 1000]
