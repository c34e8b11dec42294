"""Print the schema in SDL: `python -m billgraph.graphql.export > schema.graphql`."""

from billgraph.graphql.schema import build_schema
from billgraph.settings import Settings


def sdl() -> str:
    return build_schema(Settings()).as_str() + "\n"


if __name__ == "__main__":
    print(sdl(), end="")
