"""The organization both benchmarks write to: 1,000 customers with a USD wallet credited
10,000,000 each (the first 100 with 10 more entries, for the dashboard) and one hot wallet
credited 10^12. Rows of customers and wallets go in by SQL; every ledger entry goes through
billgraph/ledger, so that the ledger is what the service writes."""

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import text

from bench.harness.progress import progress
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database
from billgraph.db.migrate import upgrade
from billgraph.graphql.node import to_global_id
from billgraph.ledger import service as ledger
from billgraph.organizations import service as organizations

CUSTOMERS = 1_000
WALLET_FUNDS = 10_000_000
HOT_FUNDS = 10**12
CUSTOMERS_WITH_HISTORY = 100
EXTRA_ENTRIES = 10  # on top of the funding credit: 11 entries per wallet
SEED_CONCURRENCY = 16
SHAPES = ("hot", "random")  # where the load writes: the hot wallet, or all 1,000 at random

CUSTOMER_ROWS = """
INSERT INTO customers (organization_id, email, email_normalized, name, external_id,
                       created_at, updated_at)
SELECT :org, 'bench' || g || '@example.com', 'bench' || g || '@example.com',
       'Bench customer ' || g, 'bench-' || g, now(), now()
FROM generate_series(1, :n) AS g ORDER BY g
"""
WALLET_ROWS = """
INSERT INTO wallets (organization_id, customer_id, currency, balance, version,
                     created_at, updated_at)
SELECT organization_id, id, 'USD', 0, 0, now(), now()
FROM customers WHERE organization_id = :org ORDER BY id
"""
HOT_CUSTOMER = """
INSERT INTO customers (organization_id, email, email_normalized, name, external_id,
                       created_at, updated_at)
VALUES (:org, 'hot@example.com', 'hot@example.com', 'Hot wallet', 'bench-hot', now(), now())
RETURNING id
"""
HOT_WALLET = """
INSERT INTO wallets (organization_id, customer_id, currency, balance, version,
                     created_at, updated_at)
VALUES (:org, :customer, 'USD', 0, 0, now(), now()) RETURNING id
"""
SEEDED_WALLETS = """
SELECT c.id, w.id FROM customers c JOIN wallets w ON w.customer_id = c.id
WHERE c.organization_id = :org AND c.id <> :hot ORDER BY c.id
"""


@dataclass(frozen=True)
class Seeded:
    organization_id: int
    api_key: str
    customer_ids: list[int]  # the 1,000, in creation order
    wallet_ids: list[int]  # theirs, in the same order
    hot_customer_id: int
    hot_wallet_id: int

    @property
    def customers(self) -> list[str]:
        """The 1,000 customers' global ids, as the API takes them."""
        return [to_global_id("Customer", c) for c in self.customer_ids]

    @property
    def wallets(self) -> list[str]:
        return [to_global_id("Wallet", w) for w in self.wallet_ids]

    @property
    def hot_customer(self) -> str:
        return to_global_id("Customer", self.hot_customer_id)

    @property
    def hot_wallet(self) -> str:
        return to_global_id("Wallet", self.hot_wallet_id)

    def debited(self, shape: str) -> list[str]:
        """The customers (global ids) a load of `shape` (see SHAPES) debits."""
        return [self.hot_customer] if shape == "hot" else self.customers


def case_name(shape: str, clients: int) -> str:
    return f"{shape} wallet{'s' if shape == 'random' else ''}, c={clients}"


async def seed(database: Database) -> Seeded:
    """Migrate an empty database and seed it (about 3,000 ledger entries)."""
    progress("step 0: migrating and creating the organization")
    await upgrade(database)
    async with unit_of_work(database) as unit:
        created = await organizations.create(unit, "Bench Org", "USD")
    org = created.organization.id

    progress(f"step 1: seeding {CUSTOMERS} customers and wallets (SQL), hot customer and wallet")
    async with database.engine.begin() as connection:
        await connection.execute(text(CUSTOMER_ROWS), {"org": org, "n": CUSTOMERS})
        await connection.execute(text(WALLET_ROWS), {"org": org})
        hot_customer_id = (await connection.execute(text(HOT_CUSTOMER), {"org": org})).scalar_one()
        hot_wallet_id = (
            await connection.execute(text(HOT_WALLET), {"org": org, "customer": hot_customer_id})
        ).scalar_one()
        rows = (
            await connection.execute(text(SEEDED_WALLETS), {"org": org, "hot": hot_customer_id})
        ).all()
    customer_ids = [r[0] for r in rows]
    wallet_ids = [r[1] for r in rows]

    progress(
        f"step 1: ledger entries through ledger.commit_entry: {CUSTOMERS} x credit "
        f"{WALLET_FUNDS:,}, {EXTRA_ENTRIES} more on the first {CUSTOMERS_WITH_HISTORY}, "
        f"hot wallet credit {HOT_FUNDS:,}"
    )
    gate = asyncio.Semaphore(SEED_CONCURRENCY)

    async def post(customer_id: int, entry_type: ledger.EntryType, amount: int, key: str) -> None:
        request = ledger.entry_request(
            org,
            customer_id=customer_id,
            currency="USD",
            entry_type=entry_type,
            amount=amount,
            reason="bench seed",
            idempotency_key=key,
        )
        posting = await ledger.commit_entry(database, request)
        assert not posting.replayed, key

    async def fund(index: int, customer_id: int) -> None:
        async with gate:
            await post(
                customer_id, ledger.EntryType.CREDIT, WALLET_FUNDS, f"seed-{customer_id}-fund"
            )
            if index < CUSTOMERS_WITH_HISTORY:
                for j in range(EXTRA_ENTRIES):
                    kind = ledger.EntryType.DEBIT if j % 2 == 0 else ledger.EntryType.CREDIT
                    await post(customer_id, kind, 100 + j, f"seed-{customer_id}-{j}")

    started = time.monotonic()
    await post(hot_customer_id, ledger.EntryType.CREDIT, HOT_FUNDS, "seed-hot-fund")
    await asyncio.gather(*(fund(i, c) for i, c in enumerate(customer_ids)))
    async with database.engine.connect() as connection:
        count = (await connection.execute(text("SELECT count(*) FROM ledger_entries"))).scalar_one()
        await connection.execute(text("ANALYZE"))
    progress(f"step 1: {count} ledger entries written in {time.monotonic() - started:.1f} s")
    return Seeded(
        organization_id=org,
        api_key=created.api_key.secret,
        customer_ids=customer_ids,
        wallet_ids=wallet_ids,
        hot_customer_id=hot_customer_id,
        hot_wallet_id=hot_wallet_id,
    )
