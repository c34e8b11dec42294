"""The `billgraph` command: serve, migrate, create-organization, bill.

`--database-url` falls back to BILLGRAPH_DATABASE_URL, then to a SQLite file in the working
directory.
"""

import argparse
import asyncio
import json
import os
import sys

from billgraph.core.errors import BillingError
from billgraph.db.engine import Database, connect
from billgraph.db.migrate import upgrade
from billgraph.settings import get_settings


def _database_url(args: argparse.Namespace) -> str:
    return args.database_url or get_settings().database_url


async def _migrate(url: str) -> None:
    database = connect(url)
    try:
        await upgrade(database)
    finally:
        await database.dispose()


async def _create_organization(url: str, name: str, currency: str) -> dict[str, str]:
    from billgraph.core.unit import unit_of_work
    from billgraph.graphql.node import to_global_id
    from billgraph.organizations import service as organizations

    database: Database = connect(url)
    try:
        await upgrade(database)
        async with unit_of_work(database) as unit:
            created = await organizations.create(unit, name, currency)
        return {
            "organization_id": to_global_id("Organization", created.organization.id),
            "api_key": created.api_key.secret,
        }
    finally:
        await database.dispose()


async def _check_ledger(url: str) -> list[str]:
    from billgraph.ledger.audit import violations

    database = connect(url)
    try:
        return await violations(database)
    finally:
        await database.dispose()


async def _bill(url: str, now: str | None) -> str:
    from datetime import datetime

    from billgraph.billing.run import bill
    from billgraph.checkout.providers import Providers
    from billgraph.live.brokers import create_publisher

    moment = None
    if now is not None:
        try:
            moment = datetime.fromisoformat(now)
        except ValueError:
            raise ValueError(f"--now {now!r} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise ValueError("--now must carry its timezone (2026-12-01T00:00:00Z)")
    settings = get_settings()
    database = connect(url)
    providers = Providers(database, settings)
    tty = sys.stderr.isatty()

    def progress(count: int) -> None:
        # A counter on a terminal; nothing when the output goes to a log (cron).
        if tty:
            print(f"\rbillgraph: {count} subscriptions", end="", file=sys.stderr, flush=True)

    # The gateways' subscribers hear of what this run changes (on PostgreSQL).
    publisher = create_publisher(database, url)
    try:
        await upgrade(database)
        if publisher is not None:
            await publisher.start()
            database.events.attach(publisher.publish)
        summary = await bill(database, providers, moment, progress=progress)
    finally:
        if publisher is not None:
            database.events.attach(None)
            await publisher.stop()  # sends what was committed (FLUSH_TIMEOUT at most)
        await providers.close()
        await database.dispose()
    if tty and summary.subscriptions:
        print(file=sys.stderr)
    return summary.line()


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    url = _database_url(args)
    print(f"billgraph: applying migrations to {_redacted(url)}", file=sys.stderr)
    asyncio.run(_migrate(url))
    workers = args.workers
    if url.startswith("sqlite") and workers > 1:
        print("billgraph: SQLite has one writer per file; serving with 1 worker", file=sys.stderr)
        workers = 1
    # Workers are separate processes: they read the URL from the environment.
    os.environ["BILLGRAPH_DATABASE_URL"] = url
    print(f"billgraph: GraphQL at http://{args.host}:{args.port}/graphql", file=sys.stderr)
    uvicorn.run(
        "billgraph.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        log_level="warning",
        access_log=False,
        # Events are small JSON frames: compressing each costs ~40 KB per socket and CPU
        # per message for little gain.
        ws_per_message_deflate=False,
        timeout_keep_alive=get_settings().http_keep_alive_seconds,
    )


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="billgraph", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def with_database(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
        command.add_argument(
            "--database-url",
            help="sqlite+aiosqlite:///path or postgresql+asyncpg://user:pass@host/db "
            "(default: $BILLGRAPH_DATABASE_URL, else ./billgraph.db)",
        )
        return command

    serve = with_database(commands.add_parser("serve", help="apply migrations and serve the API"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="processes (PostgreSQL only)")
    with_database(commands.add_parser("migrate", help="apply database migrations"))
    with_database(
        commands.add_parser(
            "check-ledger", help="check balance == credits - debits >= 0 for every wallet"
        )
    )
    create = with_database(
        commands.add_parser("create-organization", help="create an organization and an API key")
    )
    create.add_argument("--name", required=True)
    create.add_argument("--currency", default="USD", help="default currency (ISO 4217)")
    create.add_argument("--json", action="store_true", help="print one JSON line")

    billing = with_database(
        commands.add_parser("bill", help="bill every subscription that is due (safe from cron)")
    )
    billing.add_argument(
        "--now", help="bill as of this ISO 8601 time with its timezone (default: the clock)"
    )

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            _serve(args)
        elif args.command == "migrate":
            asyncio.run(_migrate(_database_url(args)))
            print("billgraph: database is up to date", file=sys.stderr)
        elif args.command == "check-ledger":
            problems = asyncio.run(_check_ledger(_database_url(args)))
            for problem in problems:
                print(problem)
            if problems:
                print("billgraph: the ledger does not balance", file=sys.stderr)
                return 1
            print("billgraph: every wallet balances", file=sys.stderr)
        elif args.command == "bill":
            print(f"billgraph: {asyncio.run(_bill(_database_url(args), args.now))}")
        elif args.command == "create-organization":
            result = asyncio.run(
                _create_organization(_database_url(args), args.name, args.currency)
            )
            if args.json:
                print(json.dumps(result))
            else:
                print(f"organization: {result['organization_id']}")
                print(f"API key (shown once, store it now): {result['api_key']}")
    except (ValueError, BillingError) as exc:
        print(f"billgraph: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
