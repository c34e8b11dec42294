"""Prebuilt statements: the SQL and arguments built once per shape are SQLAlchemy's own, for
any number of values in an IN list, and the rows read with them are the right ones."""

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from billgraph.customers.repository import CUSTOMERS_BY_IDS
from billgraph.db.engine import Database
from billgraph.db.plain import Plain, Prebuilt
from billgraph.graphql.node import from_global_id
from billgraph.ledger.repository import ENTRIES_BY_IDS, ENTRY_PAGES
from billgraph.wallets.repository import WALLETS_BY_CUSTOMER_IDS, WALLETS_BY_IDS
from tests.conftest import postgresql_only
from tests.support.graph import Tenant

_things = Table(
    "things",
    MetaData(),
    Column("id", BigInteger, primary_key=True),
    Column("kind", String),
    Column("rank", Integer),
)
# Two IN lists, a parameter between them, a value the statement carries and a limit.
TWO_LISTS = Prebuilt(
    select(_things)
    .where(
        _things.c.id.in_(bindparam("ids", expanding=True)),
        _things.c.rank > bindparam("rank"),
        _things.c.kind.in_(bindparam("kinds", expanding=True)),
        _things.c.rank != 7,
    )
    .limit(bindparam("limit"))
)


def _sqlalchemy(statement: Prebuilt, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """What SQLAlchemy itself renders and sends for `params`."""
    compiled = statement.statement.compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
    state = compiled.construct_expanded_state(params)
    names = state.positiontup or []
    processors = state.processors
    return state.statement, [
        processors[n](v) if n in processors else v
        for n, v in zip(names, state.positional_parameters, strict=True)
    ]


SHAPES = [0, 1, 3, 1, 2, 3, 0, 17]


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        (WALLETS_BY_IDS, lambda n: {"organization_id": 4, "ids": list(range(10, 10 + n))}),
        (
            WALLETS_BY_CUSTOMER_IDS,
            lambda n: {"organization_id": 4, "customer_ids": list(range(n))},
        ),
        (ENTRIES_BY_IDS, lambda n: {"organization_id": 9, "ids": [2**40 + i for i in range(n)]}),
        (CUSTOMERS_BY_IDS, lambda n: {"organization_id": 1, "ids": list(range(5, 5 + n))}),
        (
            TWO_LISTS,
            lambda n: {
                "ids": list(range(n)),
                "rank": n,
                "kinds": [f"k{i}" for i in range(n + 1)],
                "limit": 3,
            },
        ),
    ],
    ids=["wallets", "wallets by customer", "entries", "customers", "two lists"],
)
def test_an_in_list_is_rendered_as_sqlalchemy_renders_it(statement: Prebuilt, params: Any) -> None:
    lists = [b.key for b in statement.compiled.post_compile_params]
    for n in SHAPES:  # each shape built once, then reused with other values
        for offset in (0, 100):
            values = params(n)
            values = {k: [x + offset for x in v] if "ids" in k else v for k, v in values.items()}
            assert statement.sql(values) == _sqlalchemy(statement, values), (n, offset)
            # The shape was built and kept (one that could not be built would be None and
            # rendered by SQLAlchemy on every call).
            assert statement._expansions[tuple(len(values[k]) for k in lists)] is not None


def test_a_statement_without_lists_is_rendered_as_sqlalchemy_renders_it() -> None:
    params = {
        "wallet_ids": [1, 2],
        "befores": [5, 2**62],
        "organization_id": 3,
        "entry_type": "DEBIT",
        "limit": 20,
    }
    assert ENTRY_PAGES[True].sql(params) == _sqlalchemy(ENTRY_PAGES[True], params)


@postgresql_only
async def test_rows_read_by_lists_of_each_length_are_those_asked_for(
    tenant: Tenant, database: Database
) -> None:
    wallets = []
    for _ in range(3):
        created = await tenant.create_customer()
        wallets.append(from_global_id(created["wallet"]["id"])[1])
    _, organization_id = from_global_id(tenant.organization_id)
    async with database.plain.connect() as connection:
        for asked in ([wallets[0]], wallets, [wallets[2], 10**12], [], [wallets[1]]):
            rows = await connection.rows(
                WALLETS_BY_IDS, {"organization_id": organization_id, "ids": asked}
            )
            assert sorted(r.id for r in rows) == sorted(w for w in asked if w in wallets)


@postgresql_only
async def test_a_full_pool_waits_and_a_failed_statement_gives_its_connection_back(
    database: Database,
) -> None:
    """One connection: a statement that fails returns it, and a second checkout waits for
    the first to end rather than failing or opening a second connection."""
    plain = Plain(database.engine, pool_size=1)
    failing = Prebuilt(select(literal_column("1 / 0")))
    try:
        for _ in range(3):
            with pytest.raises(asyncpg.DivisionByZeroError):
                async with plain.connect() as connection:
                    await connection.rows(failing, {})
        assert plain._busy == 0  # checked out, given back: the count drives the timeout
        async with plain.connect() as first:
            waiting = asyncio.create_task(_one(plain))
            await asyncio.sleep(0.2)
            assert not waiting.done()  # the pool's only connection is taken
            assert [tuple(r) for r in await first.rows(ONE, {})] == [(1,)]
        assert await asyncio.wait_for(waiting, 10) == [(1,)]
        async with plain.connect() as again:  # nothing was lost on the way
            assert [tuple(r) for r in await again.rows(ONE, {})] == [(1,)]
        assert plain._busy == 0
    finally:
        await plain.close()


ONE = Prebuilt(select(literal_column("1")))


async def _one(plain: Plain) -> list[tuple[Any, ...]]:
    async with plain.connect() as connection:
        return [tuple(r) for r in await connection.rows(ONE, {})]


@postgresql_only
async def test_closing_while_a_block_runs_closes_its_connection_when_given_back(
    database: Database,
) -> None:
    """A shutdown that closes the pool while requests still hold connections: each block
    ends as it would have, its connection is closed on the way back rather than pooled, and
    a later checkout gets a new pool."""
    plain = Plain(database.engine, pool_size=2)
    try:
        async with plain.connect() as reading, plain.transaction() as writing:
            held = [reading._connection, writing._connection]  # type: ignore[attr-defined]
            await plain.close()
            assert [tuple(r) for r in await reading.rows(ONE, {})] == [(1,)]
            assert [tuple(r) for r in await writing.rows(ONE, {})] == [(1,)]
        assert all(c.is_closed() for c in held)
        assert plain._busy == 0
        assert await _one(plain) == [(1,)]
    finally:
        await plain.close()
