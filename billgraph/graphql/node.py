"""Relay nodes: opaque global ids ("Type:123", base64url-encoded), the Node interface, and
`node(id:)`, which finds an object through the loader its domain registers here."""

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import cast

import strawberry

from billgraph.core.errors import NotFoundError, ValidationError
from billgraph.graphql.context import Info
from billgraph.graphql.errors import graphql_error


@strawberry.interface(description="An object with a globally unique, opaque id.")
class Node:
    id: strawberry.ID


# base64's URL-safe alphabet, from the standard one (urlsafe_b64encode's own translation).
_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def to_global_id(type_name: str, db_id: int) -> strawberry.ID:
    # binascii directly: a page writes dozens of ids, and base64's wrappers doubled the cost.
    raw = binascii.b2a_base64(f"{type_name}:{db_id}".encode(), newline=False)
    return cast(strawberry.ID, raw.translate(_URL_SAFE).rstrip(b"=").decode())


def from_global_id(global_id: str) -> tuple[str, int]:
    """(type name, database id); ValidationError if the id is not one billgraph issued."""
    try:
        if len(global_id) > 100:
            raise ValueError
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
        type_name, _, db_id = raw.partition(":")
        number = int(db_id)
        if not type_name.isalpha() or number <= 0 or number >= 2**63 or str(number) != db_id:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(f"Malformed id {global_id[:100]!r}.", "id") from None
    return type_name, number


def db_id_of(global_id: str, type_name: str, field: str = "id") -> int | None:
    """The database id if `global_id` names a `type_name`; None if it names another type.

    A malformed id raises ValidationError; an id of the wrong type is simply not found.
    """
    try:
        found_type, db_id = from_global_id(global_id)
    except ValidationError as exc:
        raise ValidationError(exc.message, field) from None
    return db_id if found_type == type_name else None


def input_id(global_id: str, type_name: str, field: str, not_found: str) -> int:
    """The database id a mutation's id argument names: ValidationError (naming `field`) if
    it is malformed, NotFoundError(`not_found`) if it names another type."""
    db_id = db_id_of(global_id, type_name, field)
    if db_id is None:
        raise NotFoundError(not_found)
    return db_id


async def find_node(info: Info, global_id: str, type_name: str) -> Node | None:
    """The `type_name` a query's id argument names in the caller's organization, or None
    (another type, or not there); a malformed id raises ValidationError."""
    db_id = db_id_of(global_id, type_name)
    return None if db_id is None else await load_node(info, type_name, db_id)


# How each node type is found by its database id in the caller's organization (None when it
# is not there): every domain's types module registers its own.
NodeLoader = Callable[[Info, int], Awaitable[Node | None]]
_LOADERS: dict[str, NodeLoader] = {}


def node_loader(type_name: str) -> Callable[[NodeLoader], NodeLoader]:
    def register(load: NodeLoader) -> NodeLoader:
        _LOADERS[type_name] = load
        return load

    return register


async def load_node(info: Info, type_name: str, db_id: int) -> Node | None:
    load = _LOADERS.get(type_name)
    return None if load is None else await load(info, db_id)


async def load_existing(info: Info, type_name: str, db_id: int) -> Node:
    """The other end of an edge of an object in the graph. It existed when that object was
    read; if a concurrent request deleted it since, the field cannot be resolved: it is null
    with an error coded NOT_FOUND (not an unexpected failure)."""
    found = await load_node(info, type_name, db_id)
    if found is None:
        raise graphql_error(
            f"{type_name} {to_global_id(type_name, db_id)} is gone: it was deleted meanwhile.",
            "NOT_FOUND",
        )
    return found


@strawberry.type
class NodeQueries:
    @strawberry.field(description="Any object of your organization by its global id.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        try:
            type_name, db_id = from_global_id(id)
        except ValidationError as exc:
            raise graphql_error(exc.message, "BAD_USER_INPUT") from None
        return await load_node(info, type_name, db_id)
