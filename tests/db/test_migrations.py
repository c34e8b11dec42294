"""The migrations must create what the models declare."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from billgraph.db.engine import Database
from billgraph.db.models import Base


async def test_migrations_create_what_the_models_declare(database: Database) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return compare_metadata(context, Base.metadata)  # type: ignore[no-any-return]

    async with database.engine.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == []
