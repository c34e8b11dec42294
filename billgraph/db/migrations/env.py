"""Alembic environment: runs on a connection handed over by billgraph.db.migrate, or on its own
engine when invoked through the `alembic` command."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from billgraph.db.models import Base
from billgraph.settings import get_settings

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_engine() -> None:
    from billgraph.db.engine import connect

    url = context.config.get_main_option("sqlalchemy.url") or get_settings().database_url
    database = connect(url)
    async with database.engine.connect() as connection:
        await connection.run_sync(run_migrations)
        await connection.commit()
    await database.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    asyncio.run(run_with_own_engine())
