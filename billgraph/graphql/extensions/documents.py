"""Query texts to documents: each parsed within the token limit, its shape checked
(limits.check_document) and validated once, then handed out again. The schema's
DocumentChecks extension and the view's lean path (graphql/lean.py) read the same cache."""

from collections import OrderedDict
from collections.abc import Iterator
from typing import Final

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse
from graphql.validation import specified_rules
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from billgraph.graphql.extensions.caches import MISSING, ByDocument
from billgraph.graphql.extensions.limits import check_document

# Strawberry's rules for an operation no extension has changed (ExecutionContext's default).
RULES: Final[tuple[type[ASTValidationRule], ...]] = tuple(specified_rules)


class Documents:
    """The documents of the last `size` texts that parsed and passed the shape checks, and
    their validation errors (by rules). A text that fails is not kept: its error is raised
    anew each time (an exception raised twice would grow its traceback)."""

    def __init__(self, max_tokens: int, max_depth: int, max_aliases: int, size: int = 256) -> None:
        self.max_tokens = max_tokens
        self.max_depth = max_depth
        self.max_aliases = max_aliases
        self.size = size
        self._parsed: OrderedDict[str, DocumentNode] = OrderedDict()
        self._errors: ByDocument[list[GraphQLError]] = ByDocument(size)

    def parse(self, query: str) -> DocumentNode:
        """The document of `query`; GraphQLError if it does not parse within the token limit
        or exceeds the shape limits."""
        document = self._parsed.get(query)
        if document is not None:
            self._parsed.move_to_end(query)
            return document
        document = parse(query, max_tokens=self.max_tokens)
        check_document(document, self.max_depth, self.max_aliases)
        self._parsed[query] = document
        if len(self._parsed) > self.size:
            self._parsed.popitem(last=False)
        return document

    def validate(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        rules: tuple[type[ASTValidationRule], ...] = RULES,
    ) -> list[GraphQLError]:
        """Validation's errors for `document` (none: valid), as Strawberry validates."""
        errors = self._errors.get(document, rules)
        if errors is MISSING:
            errors = validate_document(schema, document, rules)
            self._errors.put(document, rules, errors)
        return errors


class DocumentChecks(SchemaExtension):
    """Parsing and validation through `documents`: Strawberry's token limiter, parser cache
    and validation cache in one, with limits.check_document between parsing and validation
    (Strawberry's own depth rules expand each fragment spread anew)."""

    def __init__(self, documents: Documents) -> None:
        self.documents = documents

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query:  # without one, Strawberry answers that none was found
            context.graphql_document = self.documents.parse(context.query)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        assert document is not None
        rules = tuple(context.validation_rules)
        context.pre_execution_errors = self.documents.validate(
            context.schema._schema, document, rules
        )
        yield
