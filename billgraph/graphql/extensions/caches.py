"""What is worked out once per parsed document: Documents hands the same document object out
for the same text, so a repeated operation is validated and costed once, not on every
request."""

from collections import OrderedDict
from collections.abc import Hashable
from enum import Enum
from typing import Final, Generic, Literal, TypeVar

from graphql import DocumentNode

V = TypeVar("V")


class Missing(Enum):
    MISSING = "missing"


MISSING: Final = Missing.MISSING  # what ByDocument.get gives for what it does not hold


class ByDocument(Generic[V]):
    """Values by document (by identity) and more of a key; the least recently used beyond
    `size` are dropped. An entry holds its document, so the document's id cannot be another
    document's while the entry is here."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[int, Hashable], tuple[DocumentNode, V]] = OrderedDict()

    def get(self, document: DocumentNode, key: Hashable = None) -> V | Literal[Missing.MISSING]:
        """The value, or MISSING."""
        entry = self._entries.get((id(document), key))
        if entry is None or entry[0] is not document:
            return MISSING
        self._entries.move_to_end((id(document), key))
        return entry[1]

    def put(self, document: DocumentNode, key: Hashable, value: V) -> None:
        self._entries[(id(document), key)] = (document, value)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
