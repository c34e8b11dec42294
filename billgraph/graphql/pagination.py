"""Relay connections paged by keyset: a cursor encodes the last row's sort key, never an offset,
so rows arriving while a client pages are neither skipped nor repeated."""

import base64
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import strawberry

from billgraph.graphql.errors import graphql_error
from billgraph.graphql.node import to_global_id

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

NodeT = TypeVar("NodeT")
RowT = TypeVar("RowT")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def _cursor(self: "Edge[object]") -> str:  # Strawberry passes the edge as `self`
    return encode_cursor(self.kind, self.key)


@strawberry.type
class Edge(Generic[NodeT]):
    # Encoded when selected: most pages ask for nodes only (a connection's pageInfo carries
    # the cursor to page on).
    cursor: str = strawberry.field(resolver=_cursor)
    node: NodeT
    kind: strawberry.Private[str]
    key: strawberry.Private[int]


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo


def page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise graphql_error(f"`first` must be between 0 and {MAX_PAGE_SIZE}.", "BAD_USER_INPUT")
    return first


def encode_cursor(kind: str, key: int) -> str:
    return to_global_id(kind, key)  # the same encoding: "kind:key", base64url, unpadded


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The sort key in a cursor of this kind; BAD_USER_INPUT for anything else."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        found_kind, _, key = raw.partition(":")
        value = int(key)
        if found_kind != kind or not 0 <= value < 2**62 or len(cursor) > 100:
            raise ValueError
    except ValueError:
        raise graphql_error("Invalid `after` cursor.", "BAD_USER_INPUT") from None
    return value


def build_connection(
    rows: Sequence[RowT],
    limit: int,
    kind: str,
    sort_key: Callable[[RowT], int],
    to_node: Callable[[RowT], NodeT],
) -> Connection[NodeT]:
    """A page from `rows`, fetched with `limit + 1`: the extra row only says a next page exists."""
    edges = [Edge(node=to_node(r), kind=kind, key=sort_key(r)) for r in rows[:limit]]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(rows) > limit,
            end_cursor=encode_cursor(kind, edges[-1].key) if edges else None,
        ),
    )
