"""Relay nodes: opaque global ids ("Type:123", base64url-encoded) and the Node interface."""

import base64
import binascii

import strawberry

from billgraph.services.errors import ValidationError


@strawberry.interface(description="An object with a globally unique, opaque id.")
class Node:
    id: strawberry.ID


def to_global_id(type_name: str, db_id: int) -> strawberry.ID:
    raw = f"{type_name}:{db_id}".encode()
    return strawberry.ID(base64.urlsafe_b64encode(raw).decode().rstrip("="))


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
