"""The checked-in schema.graphql and the migrations must match the code."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from billgraph.db.engine import Database
from billgraph.db.models import Base
from billgraph.graphql.export import sdl

ROOT = Path(__file__).resolve().parent.parent


def test_schema_graphql_is_up_to_date() -> None:
    checked_in = (ROOT / "schema.graphql").read_text()
    assert checked_in == sdl(), "schema.graphql is stale: run `make schema` and review the diff"


async def test_migrations_create_what_the_models_declare(database: Database) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return compare_metadata(context, Base.metadata)  # type: ignore[no-any-return]

    async with database.engine.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == []
