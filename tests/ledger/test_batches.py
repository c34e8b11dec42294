"""Postings of one wallet written together in one transaction (group commit, PostgreSQL): when
the batch fails as a whole, each posting is written again on its own and gets its own outcome,
written once, announced once."""

import asyncio

from sqlalchemy import text

from billgraph.db.engine import Database
from billgraph.graphql.node import from_global_id
from billgraph.ledger import posting
from billgraph.ledger.statements import POSTING
from billgraph.live.events import BalanceChanged
from tests.conftest import assert_ledger_invariant, postgresql_only
from tests.ledger.test_posting import announcements, balance, entries_with_key, request
from tests.support.graph import Tenant


async def _funded(tenant: Tenant) -> int:
    created = await tenant.create_customer()
    await tenant.post(created["customer"]["id"], 100, "CREDIT")
    return from_global_id(created["customer"]["id"])[1]


async def _waiting_on_a_lock(database: Database) -> None:
    """Until some backend of this database waits on a lock (the batch, on the key's index)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(200):
        async with database.sessions() as session:
            if await session.scalar(query):
                return
        await asyncio.sleep(0.02)
    raise AssertionError("the batch never waited on the racing transaction")


@postgresql_only
async def test_a_batch_that_loses_a_key_race_writes_each_posting_once(
    tenant: Tenant, database: Database
) -> None:
    """A batch of two postings, the second with a key that a transaction elsewhere has written
    but not committed: the batch waits, fails on the key once that commits, and rolls back. The
    first posting is then written on its own, the second finds its key taken (None)."""
    _, organization_id = from_global_id(tenant.organization_id)
    customer, other = await _funded(tenant), await _funded(tenant)
    first = request(organization_id, customer, 7, "batch-first")
    second = request(organization_id, customer, 11, "batch-raced")
    with announcements(database) as heard:
        async with database.plain.transaction() as racing:
            taken = request(organization_id, other, 5, "batch-raced")
            assert await racing.rows(POSTING, taken.params())
            # Queued in the same turn of the loop: one batch, [first, second].
            written = asyncio.gather(
                posting.write(database, first), posting.write(database, second)
            )
            await _waiting_on_a_lock(database)
        outcomes = await asyncio.wait_for(written, 10)
    done, refused = outcomes
    assert refused is None
    assert done is not None and done.entry.amount == 7 and done.wallet.balance == 107
    assert await entries_with_key(database, organization_id, "batch-first") == 1
    assert await entries_with_key(database, organization_id, "batch-raced") == 1  # the racer's
    assert await balance(database, customer) == 107
    assert await balance(database, other) == 105
    announced = [e.entry.idempotency_key for e in heard if isinstance(e, BalanceChanged)]
    assert announced == ["batch-first"]
    await assert_ledger_invariant(database)
