"""What is worked out once per parsed document: the parser cache hands the same document
object out for the same text, so a repeated operation is checked, validated and costed once,
not on every request."""

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from enum import Enum
from typing import Final, Generic, Literal, TypeVar

from graphql import DocumentNode, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

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


class ValidationCache(SchemaExtension):
    """Strawberry's ValidationCache, keyed by the document's identity rather than its hash:
    graphql-core hashes a document by walking all of it, on every request. One `errors`
    cache per schema."""

    def __init__(self, errors: "ByDocument[list[GraphQLError]]") -> None:
        self._errors = errors

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        assert document is not None
        rules = tuple(context.validation_rules)
        errors = self._errors.get(document, rules)
        if errors is MISSING:
            errors = validate_document(context.schema._schema, document, rules)
            self._errors.put(document, rules, errors)
        context.pre_execution_errors = errors
        yield
