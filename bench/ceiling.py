"""The ceiling for a Python server: the two reads of bench.reads, and the debit of
bench.ledger, answered by a minimal Starlette + asyncpg app, with no GraphQL and no
SQLAlchemy, for the gateway to be measured against (the ratio billgraph / ceiling is the
figure to raise).

It runs the SQL the gateway runs, statement for statement and character for character: the API
key's lookup (then skipped for CACHE_SECONDS, as the gateway's principal cache skips it), then
for the wallet read one select of the wallet and a LATERAL page of its newest entries, for the
customers read one select of the page of customers with their wallets and a LATERAL page of
each wallet's entries (bench.reads checks that the gateway still sends these). Each request
has one connection from the gateway's own pool (billgraph.db.pool: a checkout is a list pop).
It answers with the bytes the gateway answers: the same JSON shape, ids and timestamps, and
the cost `extensions` the gateway adds (constants for these documents). What it leaves out is
everything that is not those statements and that JSON: GraphQL parsing, validation and
execution, the ORM, sessions, middleware, the event broker.

It takes the gateway's request (POST /graphql, a bearer API key, a JSON body) but reads only
`operationName` and `variables`:

    Wallet     {"id": <Wallet global id>}       -> data.wallet { id balance ledgerEntries(first: 20)
                                                   { edges { node { id amount idempotencyKey createdAt } } } }
    Customers  {"after": <customer cursor>|null} -> data.customers(first: 10) { edges { node { id
                                                   wallets { id balance ledgerEntries(first: 5)
                                                   { edges { node { id amount createdAt } } } } } } }

    Debit      {"input": {customerId, amount, currency, entryType, idempotencyKey}}
                                                -> data.createLedgerEntry { __typename replayed
                                                   entry { id sequence balanceAfter }
                                                   wallet { balance version } }

The debit runs the gateway's posting statement (ledger.statements.POSTING, bound from the same
checked request), one autocommitted statement per request as pgbench runs it, without the
gateway's batching of one wallet's concurrent postings; a posting that matches no row is
answered as a refusal, not explained.

Served as the gateway is, by uvicorn in factory mode (bench.harness.servers.start_ceiling):

    CEILING_DSN=postgresql://postgres@127.0.0.1:5432/billgraph \\
        .venv/bin/python -m uvicorn bench.ceiling:create_app --factory --workers 2
"""

import base64
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billgraph.api_keys.cache import CACHE_SECONDS
from billgraph.db.plain import ACQUIRE_TIMEOUT_SECONDS
from billgraph.db.pool import Pool
from billgraph.ledger.posting import EntryType
from billgraph.ledger.repository import CUSTOMERS_WITH_PAGES
from billgraph.ledger.service import entry_request
from billgraph.ledger.statements import POSTING

WALLET_ENTRIES = 20  # ledgerEntries(first: 20) of the wallet read
CUSTOMERS_PAGE = 10  # customers(first: 10) of the nested read
CUSTOMER_ENTRIES = 5  # ledgerEntries(first: 5) of each of its wallets
# The `extensions` the gateway adds to every answer: its cost analysis of the document, a
# constant for a fixed document (as a server with persisted documents would know it).
EXTENSIONS = {
    "Wallet": {"cost": {"requestedQueryCost": 124, "maximumAvailable": 50000}},
    "Customers": {"cost": {"requestedQueryCost": 321, "maximumAvailable": 50000}},
    "Debit": {"cost": {"requestedQueryCost": 8, "maximumAvailable": 50000}},
}
SCOPES = {"Wallet": "read", "Customers": "read", "Debit": "write"}  # what each one needs
NO_CURSOR = 2**62  # billgraph.ledger.repository.NO_CURSOR: a first page of entries
POOL_SIZE = 20  # billgraph's default pool per worker
STATEMENT_TIMEOUT_MS = 5000  # and its statement_timeout

# The statements as the gateway's SQLAlchemy compiles them for asyncpg (bench.reads prints
# the gateway's and compares them with these).
API_KEY = (
    "SELECT api_keys.id, api_keys.organization_id, api_keys.name, api_keys.prefix, "
    "api_keys.secret_hash, api_keys.scopes, api_keys.created_at, api_keys.last_used_at, "
    "api_keys.revoked_at, organizations.id AS id_1, organizations.name AS name_1, "
    "organizations.default_currency, organizations.created_at AS created_at_1 \n"
    "FROM api_keys JOIN organizations ON organizations.id = api_keys.organization_id \n"
    "WHERE api_keys.secret_hash = $1::VARCHAR AND api_keys.revoked_at IS NULL"
)
_ENTRY_COLUMNS = (
    "ledger_entries.id AS id, ledger_entries.organization_id AS organization_id, "
    "ledger_entries.wallet_id AS wallet_id, ledger_entries.sequence AS sequence, "
    "ledger_entries.entry_type AS entry_type, ledger_entries.amount AS amount, "
    "ledger_entries.currency AS currency, ledger_entries.balance_after AS balance_after, "
    "ledger_entries.reason AS reason, ledger_entries.idempotency_key AS idempotency_key, "
    "ledger_entries.request_hash AS request_hash, ledger_entries.created_at AS created_at \n"
)
_PAGE_AND_WALLET_COLUMNS = (
    "SELECT page.id, page.organization_id, page.wallet_id, page.sequence, page.entry_type, "
    "page.amount, page.currency, page.balance_after, page.reason, page.idempotency_key, "
    "page.request_hash, page.created_at, wallets.id AS id_1, wallets.organization_id AS "
    "organization_id_1, wallets.customer_id, wallets.currency AS currency_1, wallets.balance, "
    "wallets.version, wallets.low_balance_threshold, wallets.created_at AS created_at_1, "
    "wallets.updated_at"
)


# A page of customers with their wallets and each wallet's page of entries, in one
# statement: the gateway's own text (ledger.repository.CUSTOMERS_WITH_PAGES, long enough
# that a copy here would only drift). Its parameters: the organization, the cursor's customer
# id (after a cursor), the page's size plus one, the entries' cursor and count. A customer's
# and a wallet's columns come on their first row only.
CUSTOMERS_FIRST = CUSTOMERS_WITH_PAGES[False, False, False].compiled.string
CUSTOMERS_AFTER = CUSTOMERS_WITH_PAGES[True, False, False].compiled.string
WALLET_WITH_PAGE = (
    _PAGE_AND_WALLET_COLUMNS + " \n"
    "FROM wallets JOIN customers ON customers.id = wallets.customer_id LEFT OUTER JOIN LATERAL "
    "(SELECT " + _ENTRY_COLUMNS + "FROM ledger_entries \n"
    "WHERE ledger_entries.wallet_id = wallets.id AND ledger_entries.sequence < $1::BIGINT AND "
    "ledger_entries.organization_id = $2::BIGINT ORDER BY ledger_entries.sequence DESC \n"
    " LIMIT $3::INTEGER) AS page ON true \n"
    "WHERE wallets.organization_id = $2::BIGINT AND customers.deleted_at IS NULL AND "
    "wallets.id IN ($4::BIGINT) ORDER BY wallets.customer_id, wallets.id, page.sequence DESC"
)


def statements(operation: str, *, after: bool = True) -> list[str]:
    """What one request of `operation` runs, in order (a full page of customers)."""
    if operation == "Wallet":
        return [API_KEY, WALLET_WITH_PAGE]
    return [API_KEY, CUSTOMERS_AFTER if after else CUSTOMERS_FIRST]


def global_id(type_name: str, db_id: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{db_id}".encode()).decode().rstrip("=")


def from_global_id(value: object, type_name: str) -> int | None:
    """The database id of a global id of `type_name`; None for anything else."""
    if not isinstance(value, str) or len(value) > 100:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        found, _, db_id = raw.partition(":")
        number = int(db_id)
    except ValueError:
        return None
    return number if found == type_name and 0 < number < 2**63 else None


def iso(value: datetime) -> str:
    """As the gateway's DateTime scalar writes a UTC timestamp."""
    return value.isoformat()


def _json(payload: object, status: int = 200) -> Response:
    # Compact, UTF-8 as is, by orjson: as the gateway writes its answers.
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def _error(message: str, code: str, status: int) -> Response:
    return _json(
        {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}, status
    )


Resolver = Callable[[asyncpg.Connection, int, dict[str, Any]], Any]


async def _wallet(connection: asyncpg.Connection, org: int, variables: dict[str, Any]) -> Any:
    wallet_id = from_global_id(variables.get("id"), "Wallet")
    if wallet_id is None:
        return {"wallet": None}
    rows = await connection.fetch(WALLET_WITH_PAGE, NO_CURSOR, org, WALLET_ENTRIES + 1, wallet_id)
    if not rows:
        return {"wallet": None}
    wallet = rows[0]
    return {
        "wallet": {
            "id": global_id("Wallet", wallet["id_1"]),
            "balance": wallet["balance"],
            "ledgerEntries": {
                "edges": [
                    {
                        "node": {
                            "id": global_id("LedgerEntry", r["id"]),
                            "amount": r["amount"],
                            "idempotencyKey": r["idempotency_key"],
                            "createdAt": iso(r["created_at"]),
                        }
                    }
                    for r in rows[:WALLET_ENTRIES]
                    if r["id"] is not None
                ]
            },
        }
    }


def _customer_cursor(after: object) -> int | None:
    """The customer id of a customers cursor ("customer:<id>", base64 without padding)."""
    if not isinstance(after, str):
        return None
    try:
        kind, _, key = (
            base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode().partition(":")
        )
        return int(key) if kind == "customer" else None
    except ValueError:
        return None


async def _customers(connection: asyncpg.Connection, org: int, variables: dict[str, Any]) -> Any:
    after = _customer_cursor(variables.get("after"))
    entries = (NO_CURSOR, CUSTOMER_ENTRIES + 1)
    if after is None:
        rows = await connection.fetch(CUSTOMERS_FIRST, org, CUSTOMERS_PAGE + 1, *entries)
    else:
        rows = await connection.fetch(CUSTOMERS_AFTER, org, after, CUSTOMERS_PAGE + 1, *entries)
    customers: list[asyncpg.Record] = []
    wallets_of: dict[int, list[asyncpg.Record]] = {}
    entries_of: dict[int, list[asyncpg.Record]] = {}
    for row in rows:
        if row["numbered_id"] not in wallets_of:  # a customer's first row
            wallets_of[row["numbered_id"]] = []
            customers.append(row)
        wallet = row["owned_id"]
        if wallet is not None and wallet not in entries_of:  # a wallet's first row
            entries_of[wallet] = []
            wallets_of[row["numbered_id"]].append(row)
        if row["page_id"] is not None:
            entries_of[wallet].append(row)
    customers = customers[:CUSTOMERS_PAGE]
    return {
        "customers": {
            "edges": [
                {
                    "node": {
                        "id": global_id("Customer", c["numbered_id"]),
                        "wallets": [
                            {
                                "id": global_id("Wallet", w["owned_id"]),
                                "balance": w["balance"],
                                "ledgerEntries": {
                                    "edges": [
                                        {
                                            "node": {
                                                "id": global_id("LedgerEntry", e["page_id"]),
                                                "amount": e["page_amount"],
                                                "createdAt": iso(e["page_created_at"]),
                                            }
                                        }
                                        for e in entries_of[w["owned_id"]][:CUSTOMER_ENTRIES]
                                    ]
                                },
                            }
                            for w in wallets_of[c["numbered_id"]]
                        ],
                    }
                }
                for c in customers
            ]
        }
    }


async def _debit(connection: asyncpg.Connection, org: int, variables: dict[str, Any]) -> Any:
    fields = variables.get("input") or {}
    customer_id = from_global_id(fields.get("customerId"), "Customer")
    if customer_id is None:
        return {"createLedgerEntry": {"__typename": "NotFoundError"}}
    request = entry_request(
        org,
        customer_id=customer_id,
        currency=fields["currency"],
        entry_type=EntryType(fields["entryType"]),
        amount=fields["amount"],
        reason=fields.get("reason"),
        idempotency_key=fields["idempotencyKey"],
    )
    sql, arguments = POSTING.sql(request.params())
    rows = await connection.fetch(sql, *arguments)
    if not rows:
        return {"createLedgerEntry": {"__typename": "InsufficientBalanceError"}}
    entry_id, _, sequence, balance_after, _, _ = rows[0]
    return {
        "createLedgerEntry": {
            "__typename": "CreateLedgerEntrySuccess",
            "replayed": False,
            "entry": {
                "id": global_id("LedgerEntry", entry_id),
                "sequence": sequence,
                "balanceAfter": balance_after,
            },
            "wallet": {"balance": balance_after, "version": sequence},
        }
    }


OPERATIONS: dict[str, Resolver] = {"Wallet": _wallet, "Customers": _customers, "Debit": _debit}


def create_app(dsn: str | None = None) -> Starlette:
    """The app on the database at `dsn` (a libpq URL; default $CEILING_DSN)."""
    url = dsn or os.environ["CEILING_DSN"]
    pool: Pool | None = None
    # secret -> (the key's row, when it expires): the gateway's principal cache, which
    # skips the lookup for CACHE_SECONDS after it.
    keys: dict[str, tuple[asyncpg.Record, float]] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = Pool(
            url,
            POOL_SIZE,
            {
                "statement_timeout": str(STATEMENT_TIMEOUT_MS),
                "application_name": "billgraph-ceiling",
            },
        )
        try:
            yield
        finally:
            await pool.close()

    async def graphql(request: Request) -> Response:
        scheme, _, secret = request.headers.get("authorization", "").strip().partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret.startswith("bgk_") or not secret.isascii():
            return _error("A valid API key is required.", "UNAUTHENTICATED", 401)
        try:
            payload = json.loads(await request.body())
            operation = payload["operationName"]
            resolver = OPERATIONS[operation]
            variables = payload.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return _error("Unknown operation.", "BAD_REQUEST", 400)
        assert pool is not None
        async with pool.connection(ACQUIRE_TIMEOUT_SECONDS) as connection:
            key, expires = keys.get(secret, (None, 0.0))
            if key is None or expires < time.monotonic():
                hashed = hashlib.sha256(secret.encode()).hexdigest()
                key = await connection.fetchrow(API_KEY, hashed)
                if key is None:
                    return _error("A valid API key is required.", "UNAUTHENTICATED", 401)
                keys[secret] = (key, time.monotonic() + CACHE_SECONDS)
            if SCOPES[operation] not in key["scopes"].split(","):
                return _error("This API key lacks the scope.", "FORBIDDEN", 403)
            data = await resolver(connection, key["organization_id"], variables)
        return _json({"data": data, "extensions": EXTENSIONS[operation]})

    async def healthz(_: Request) -> Response:
        return _json({"status": "ok"})

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
