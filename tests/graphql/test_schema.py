"""The checked-in schema.graphql must match the code."""

from pathlib import Path

from billgraph.graphql.export import sdl

ROOT = Path(__file__).resolve().parents[2]


def test_schema_graphql_is_up_to_date() -> None:
    checked_in = (ROOT / "schema.graphql").read_text()
    assert checked_in == sdl(), "schema.graphql is stale: run `make schema` and review the diff"
