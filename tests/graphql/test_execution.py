"""The short execution path (billgraph/graphql/execution.py) answers exactly as graphql-core:
the same documents against the same objects, once with LeanExecution and once with
Strawberry's own execution, give the same data and the same errors (message, path,
locations), whichever part of a document the short path takes or gives back."""

import asyncio
import enum
from decimal import Decimal
from typing import Annotated, Any

import pytest
import strawberry
from graphql import ExperimentalIncrementalExecutionResults
from graphql.execution.values import get_argument_values
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from billgraph.graphql import execution
from billgraph.graphql.execution import COMPLETERS, DEEPS, LeanExecution


@strawberry.enum
class Kind(enum.Enum):
    CREDIT = "credit"
    DEBIT = "debit"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Tag(Named):
    weight: int | None

    @strawberry.field
    async def shout(self, info: strawberry.Info) -> str:  # a resolver on a type with is_type_of
        return self.name.upper()


@strawberry.type
class Entry:
    id: strawberry.ID
    amount: int
    kind: Kind
    note: str | None
    price: Decimal  # a scalar that serializes anything (with str)
    tags: list[Tag]
    maybe_tags: list[Tag | None] | None
    gate: strawberry.Private["asyncio.Future[int] | None"] = None

    @strawberry.field
    def doubled(self, info: strawberry.Info) -> int:  # a resolver: graphql-core's to call
        return self.amount * 2

    @strawberry.field
    async def scaled(self, info: strawberry.Info, by: int, plus: int = 0) -> int:  # arguments
        return self.amount * by + plus

    @strawberry.field
    def half(self) -> int:  # of the object alone: read like an attribute
        return self.amount // 2

    @strawberry.field
    async def later(self, info: strawberry.Info) -> int:  # awaited
        return self.amount * 3

    @strawberry.field
    async def twin(self, info: strawberry.Info) -> Tag | None:  # an object, awaited
        return self.tags[0] if self.tags else None

    @strawberry.field
    async def lenient(self, info: strawberry.Info) -> int | None:  # its error: a null
        if self.amount % 2 == 0:
            raise ValueError(f"no even amounts: {self.amount}")
        return self.amount

    @strawberry.field
    def strict(self, info: strawberry.Info) -> int:  # its error nulls the nearest nullable
        if self.amount % 2 == 0:
            raise ValueError(f"no even amounts: {self.amount}")
        return self.amount

    @strawberry.field
    async def waits(self, info: strawberry.Info) -> int:  # waits on the loop, as on a batch
        await asyncio.sleep(0)
        return self.amount * 5

    @strawberry.field
    async def shared(self, info: strawberry.Info) -> int:  # waits on the future `sharedToo`
        return await self._gate()  # waits on too, as two fields of one loader key do

    @strawberry.field
    async def shared_too(self, info: strawberry.Info) -> int:
        return await self._gate() + 1

    @strawberry.field
    async def late_strict(self, info: strawberry.Info) -> int:  # fails after a wait
        await asyncio.sleep(0)
        if self.amount % 2 == 0:
            raise ValueError(f"no even amounts, later: {self.amount}")
        return self.amount

    def _gate(self) -> "asyncio.Future[int]":
        if self.gate is None:
            loop = asyncio.get_running_loop()
            self.gate = loop.create_future()
            loop.call_soon(self.gate.set_result, self.amount * 7)
        return self.gate


@strawberry.type
class Edge:
    cursor: str
    node: Entry


@strawberry.type
class Page:
    edges: list[Edge]
    grid: list[list[int]]
    total: int


def _entry(n: int, **changes: Any) -> Entry:
    values: dict[str, Any] = {
        "id": strawberry.ID(f"e{n}"),
        "amount": n,
        "kind": Kind.CREDIT if n % 2 else Kind.DEBIT,
        "note": None if n % 3 else f"note {n}",
        "price": Decimal(n) / 4,
        "tags": [Tag(name=f"t{n}", weight=n), Tag(name="x", weight=None)],
        "maybe_tags": None if n % 2 else [None, Tag(name="y", weight=1)],
    }
    values.update(changes)
    return Entry(**values)


def _page(*entries: Entry, grid: Any = None, total: Any = 3) -> Page:
    edges = [Edge(cursor=f"c{i}", node=e) for i, e in enumerate(entries)]
    return Page(edges=edges, grid=grid if grid is not None else [[1, 2], [], [3]], total=total)


def _later(value: Any) -> "asyncio.Future[Any]":
    """An awaitable of `value` (a future, not a coroutine: unawaited, it warns of nothing)."""
    future = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


def _awaiting(value: Any) -> Any:
    """`value` with an __await__ attribute of its own: graphql-core takes it for an awaitable
    (hasattr), and `await` refuses it (the type has none)."""
    value.__await__ = lambda: iter(())
    return value


def _awaiting_tag() -> Tag:
    return _awaiting(Tag(name="own", weight=1))  # type: ignore[no-any-return]


# What each `page(case:)` returns: well-formed pages, and values graphql-core refuses.
PAGES: dict[str, Any] = {
    "plain": lambda: _page(*(_entry(n) for n in range(1, 6))),
    "empty": lambda: _page(),
    "null amount": lambda: _page(_entry(1), _entry(2, amount=None)),
    "bad amount": lambda: _page(_entry(1, amount="many")),
    "huge amount": lambda: _page(_entry(1, amount=2**40)),
    "bad kind": lambda: _page(_entry(1, kind="credit?")),
    "null tag": lambda: _page(_entry(1, tags=[Tag(name="a", weight=1), None])),
    "null maybe tag": lambda: _page(_entry(2)),
    "not a tag": lambda: _page(_entry(1, tags=[Tag(name="a", weight=1), Kind.CREDIT])),
    "tags not a list": lambda: _page(_entry(1, tags=Tag(name="a", weight=1))),
    "tags a generator": lambda: _page(_entry(1, tags=(Tag(name=str(i), weight=i) for i in [1]))),
    "awaitable tag": lambda: _page(_entry(1, tags=[_later(Tag(name="late", weight=2))])),
    "awaitable edges": lambda: Page(
        edges=_later([Edge(cursor="c", node=_entry(1))]),  # type: ignore[arg-type]
        grid=[],
        total=1,
    ),
    "error as node": lambda: Page(
        edges=[Edge(cursor="c", node=ValueError("no node"))],  # type: ignore[arg-type]
        grid=[],
        total=1,
    ),
    "null node": lambda: Page(edges=[Edge(cursor="c", node=None)], grid=[], total=1),  # type: ignore[arg-type]
    "null grid row": lambda: _page(_entry(1), grid=[[1], None]),
    "bad total": lambda: _page(_entry(1), total=1.5),
    "error as price": lambda: _page(_entry(1, price=ValueError("no price"))),
    "awaitable price": lambda: _page(_entry(1, price=_later(Decimal("1.5")))),
    "a tag cast to another type": lambda: _page(
        _entry(1, tags=[strawberry.cast(Entry, Tag(name="cast", weight=1))])
    ),
    "a tag with an __await__ of its own": lambda: _page(_entry(1, tags=[_awaiting_tag()])),
    "an edge with an __await__ of its own": lambda: Page(
        edges=[_awaiting(Edge(cursor="c", node=_entry(1)))], grid=[], total=1
    ),
}


@strawberry.interface
class Problem:
    message: str


@strawberry.type
class Refusal(Problem):
    code: str

    @strawberry.field
    async def hint(self, info: strawberry.Info) -> str:  # a resolver inside a fragment
        return f"{self.code}: try again"


@strawberry.type
class Shortfall(Problem):
    missing: int


Outcome = Annotated[Page | Refusal, strawberry.union("Outcome")]

# What each `outcome(case:)` and `problem(case:)` returns: a union's and an interface's
# members, values of no member type, nulls, and members graphql-core refuses.
OUTCOMES: dict[str, Any] = {
    **PAGES,
    "refusal": lambda: Refusal(message="no", code="NO"),
    "refusal without a code": lambda: Refusal(message="no", code=None),  # type: ignore[arg-type]
    "shortfall": lambda: Shortfall(message="short", missing=5),
    "a tag": lambda: Tag(name="t", weight=1),
    "null": lambda: None,
}


@strawberry.type
class Query:
    @strawberry.field
    def page(self, case: str) -> Page:
        return PAGES[case]()  # type: ignore[no-any-return]

    @strawberry.field
    def maybe_page(self, case: str) -> Page | None:
        return PAGES[case]()  # type: ignore[no-any-return]

    @strawberry.field
    def outcome(self, case: str) -> Outcome:
        return OUTCOMES[case]()  # type: ignore[no-any-return]

    @strawberry.field
    def maybe_outcome(self, case: str) -> Outcome | None:
        return OUTCOMES[case]()  # type: ignore[no-any-return]

    @strawberry.field
    def problem(self, case: str) -> Problem | None:
        return OUTCOMES[case]()  # type: ignore[no-any-return]


def _schema(context: type[StrawberryGraphQLCoreExecutionContext]) -> strawberry.Schema:
    return strawberry.Schema(Query, types=[Shortfall], execution_context_class=context)


LEAN = _schema(LeanExecution)
CORE = _schema(StrawberryGraphQLCoreExecutionContext)

SELECTIONS = {
    "leaves": "edges { cursor node { id amount kind note price } } total",
    "aliases and typename": "all: edges { c: cursor n: node { __typename i: id a: amount } }",
    "nested lists": "grid total edges { node { tags { name weight } maybeTags { name } } }",
    "a resolver inside": "edges { node { id doubled tags { name } } }",
    "a computed field": "edges { node { id half } }",
    "awaited resolvers inside": "edges { cursor node { id later twin { name weight } } } total",
    "a failing resolver inside": "total edges { node { id lenient tags { name } } }",
    "a failing non-null resolver inside": "edges { node { id strict later } } total",
    "resolvers that wait": "edges { node { id waits shared sharedToo later } } total",
    "a non-null resolver failing after a wait": "edges { node { id lateStrict waits } } total",
    "a resolver on an interface's type": "edges { node { id tags { name shout } } }",
    "the same key twice": "edges { node { id } node { amount } }",
    "a resolver with arguments": "edges { node { id scaled(by: 3) again: scaled(by: 2, plus: 1) } }",
    "fragments": "edges { ...E } fragment E on Edge { cursor node { ... on Entry { id } } }",
    "directives": "edges { cursor @include(if: $yes) node @skip(if: $yes) { id } }",
    "interface fragment": "edges { node { tags { ... on Named { name } weight } } }",
}


# Selections of the union `outcome` (Page | Refusal), as each of its members takes them.
OUTCOME_SELECTIONS = {
    "page or refusal": "__typename ... on Page { total edges { node { id amount } } } "
    "... on Refusal { code message }",
    "a resolver inside a fragment": "... on Page { edges { node { id later tags { name } } } } "
    "... on Refusal { message hint }",
    "a failing resolver inside a fragment": "... on Page { edges { node { id strict } } }",
    "an interface's fragment": "... on Problem { message } ... on Refusal { code }",
    "nested fragments": "... on Outcome { ... on Page { total } } ... { __typename }",
    "typename alone": "__typename",
    "the same key twice": "__typename ... on Page { __typename total }",
    "a fragment spread": "...P fragment P on Page { total }",
    "a fragment with a directive": "... on Page @include(if: $yes) { total } "
    "... on Refusal { code }",
}
# Selections of the interface `problem` (Refusal, Shortfall).
PROBLEM_SELECTIONS = {
    "its own field": "message",
    "members' fields": "__typename message ... on Refusal { code hint } "
    "... on Shortfall { missing }",
    "the same key twice": "message ... on Problem { message }",
    "a fragment per member": "... on Refusal { said: message } ... on Shortfall { short: message }",
}


def _document(selection: str, field: str) -> str:
    body, _, fragment = selection.partition(" fragment ")
    yes = ", $yes: Boolean = true" if "$yes" in body else ""
    document = f"query Q($case: String!{yes}) {{ {field}(case: $case) {{ {body} }} }}"
    return document + (f" fragment {fragment}" if fragment else "")


def _answer(result: Any) -> tuple[Any, list[dict[str, Any]]]:
    errors = [e.formatted for e in result.errors or []]
    return result.data, sorted(errors, key=lambda e: (str(e.get("path")), e["message"]))


async def _both(document: str, case: str) -> tuple[Any, Any]:
    lean, core = await asyncio.gather(
        LEAN.execute(document, variable_values={"case": case}),
        CORE.execute(document, variable_values={"case": case}),
    )
    return _answer(lean), _answer(core)


@pytest.mark.parametrize("field", ["page", "maybePage"])
@pytest.mark.parametrize("case", sorted(PAGES))
@pytest.mark.parametrize("selection", sorted(SELECTIONS))
async def test_the_short_path_answers_as_graphql_core(
    field: str, case: str, selection: str
) -> None:
    lean, core = await _both(_document(SELECTIONS[selection], field), case)
    assert lean == core


@pytest.mark.parametrize("field", ["outcome", "maybeOutcome"])
@pytest.mark.parametrize("case", sorted(OUTCOMES))
@pytest.mark.parametrize("selection", sorted(OUTCOME_SELECTIONS))
async def test_a_union_is_answered_as_graphql_core_answers_it(
    field: str, case: str, selection: str
) -> None:
    lean, core = await _both(_document(OUTCOME_SELECTIONS[selection], field), case)
    assert lean == core


@pytest.mark.parametrize("case", sorted(OUTCOMES))
@pytest.mark.parametrize("selection", sorted(PROBLEM_SELECTIONS))
async def test_an_interface_is_answered_as_graphql_core_answers_it(
    case: str, selection: str
) -> None:
    lean, core = await _both(_document(PROBLEM_SELECTIONS[selection], "problem"), case)
    assert lean == core


async def test_a_union_is_completed_by_what_was_compiled_for_its_member() -> None:
    """Each member type's part of the selection is compiled once: plain throughout, with
    resolvers inside (deep), or not at all when the selection needs graphql-core's
    collection (a fragment spread, the same key twice)."""
    compiled: dict[tuple[str, str], dict[str, set[str]]] = {}
    for selection in ("page or refusal", "a resolver inside a fragment", "a fragment spread"):
        for case in ("plain", "refusal"):
            getattr(LEAN._schema, COMPLETERS).clear()
            getattr(LEAN._schema, DEEPS).clear()
            document = _document(OUTCOME_SELECTIONS[selection], "outcome")
            result = await LEAN.execute(document, variable_values={"case": case})
            assert result.errors is None
            compiled[selection, case] = _compiled()
    # "none" for the union itself, whatever the selection (nothing compiles for an
    # abstract type), next to what compiled for the member's part.
    assert compiled == {
        ("page or refusal", "plain"): {"outcome": {"none", "plain"}},
        ("page or refusal", "refusal"): {"outcome": {"none", "plain"}},
        ("a resolver inside a fragment", "plain"): {"outcome": {"none", "deep"}},
        ("a resolver inside a fragment", "refusal"): {"outcome": {"none", "deep"}},
        # graphql-core collects the page's fields; the short path takes the plain ones
        ("a fragment spread", "plain"): {"outcome": {"none"}, "total": {"plain"}},
        ("a fragment spread", "refusal"): {"outcome": {"none"}},
    }


async def test_each_case_is_what_it_says() -> None:
    """The cases that should fail do fail (with graphql-core's errors), the others do not:
    the comparison above covers both."""
    document = _document(
        SELECTIONS["nested lists"] + " edges { node { amount kind price } }", "page"
    )
    failing = {c for c in PAGES if (await _both(document, c))[1][1]}
    assert failing == {
        "null amount",
        "bad amount",
        "huge amount",
        "bad kind",
        "null tag",
        "not a tag",
        "tags not a list",
        "error as node",
        "null node",
        "null grid row",
        "bad total",
        "error as price",
        "a tag cast to another type",
        "a tag with an __await__ of its own",
        "an edge with an __await__ of its own",
    }
    computed = _document(SELECTIONS["a computed field"], "page")
    assert {c for c in PAGES if (await _both(computed, c))[1][1]} == {
        "null amount",  # None // 2 raises in the resolver
        "bad amount",  # "many" // 2 raises too
        "huge amount",
        "error as node",
        "null node",
        "an edge with an __await__ of its own",
    }


def _compiled() -> dict[str, set[str]]:
    """Per field name: what was compiled for its nodes (in both caches): "plain" (the whole
    selection), "deep" (resolvers inside) or "none"."""
    found: dict[str, set[str]] = {}
    for node, complete in getattr(LEAN._schema, COMPLETERS).values():
        found.setdefault(node.name.value, set()).add("plain" if complete else "none")
    for node, plain, deep, _ in getattr(LEAN._schema, DEEPS).values():
        kind = "plain" if plain else "deep" if deep else "none"
        found.setdefault(node.name.value, set()).add(kind)
    return found


async def test_what_is_compiled_for_each_selection() -> None:
    compiled: dict[str, dict[str, set[str]]] = {}
    for selection in ("leaves", "a resolver inside", "directives"):
        getattr(LEAN._schema, COMPLETERS).clear()
        getattr(LEAN._schema, DEEPS).clear()
        result = await LEAN.execute(
            _document(SELECTIONS[selection], "page"), variable_values={"case": "plain"}
        )
        assert result.errors is None
        compiled[selection] = _compiled()
    assert compiled == {
        # the resolver's page, plain throughout: one completer
        "leaves": {"page": {"plain"}},
        # a field with a resolver below the edges: the page's deep completer walks to it
        # (and graphql-core executes it)
        "a resolver inside": {"page": {"deep"}},
        # a directive below edges: graphql-core collects the edge's fields, the short path
        # takes the plain ones
        "directives": {"page": {"deep"}, "edges": {"none"}, "cursor": {"plain"}},
    }


async def test_a_field_computed_from_the_object_alone_is_compiled() -> None:
    getattr(LEAN._schema, COMPLETERS).clear()
    getattr(LEAN._schema, DEEPS).clear()
    document = _document(SELECTIONS["a computed field"], "page")
    result = await LEAN.execute(document, variable_values={"case": "plain"})
    assert result.errors is None
    assert result.data == {
        "page": {"edges": [{"node": {"id": f"e{n}", "half": n // 2}} for n in range(1, 6)]}
    }
    assert _compiled() == {"page": {"plain"}}


def _incremental_schema(context: type[StrawberryGraphQLCoreExecutionContext]) -> strawberry.Schema:
    config = StrawberryConfig(enable_experimental_incremental_execution=True)
    return strawberry.Schema(Query, execution_context_class=context, config=config)


async def _payloads(schema: strawberry.Schema, document: str) -> list[Any]:
    """The initial result's data, then each incremental payload, formatted."""
    result: Any = await schema.execute(document)
    if not isinstance(result, ExperimentalIncrementalExecutionResults):
        return [result.data]
    payloads: list[Any] = [result.initial_result.formatted]
    payloads += [p.formatted async for p in result.subsequent_results]
    return payloads


async def test_a_streamed_list_is_left_to_graphql_core() -> None:
    """@stream on a plain list: the short path would send it whole; graphql-core streams it."""
    document = '{ page(case: "plain") { edges @stream(initialCount: 1) { cursor } total } }'
    lean = await _payloads(_incremental_schema(LeanExecution), document)
    core = await _payloads(_incremental_schema(StrawberryGraphQLCoreExecutionContext), document)
    assert lean == core
    assert len(core) > 1  # the other edges came after the first


def _redacting(source: Any, name: str) -> Any:
    """A default resolver of another schema's: notes are never shown."""
    return "(hidden)" if name == "note" else getattr(source, name)


async def test_a_schema_with_its_own_default_resolver_gets_no_short_path() -> None:
    config = StrawberryConfig(default_resolver=_redacting)
    lean = strawberry.Schema(Query, execution_context_class=LeanExecution, config=config)
    document = _document(SELECTIONS["leaves"], "page")
    result = await lean.execute(document, variable_values={"case": "plain"})
    assert result.errors is None and result.data is not None
    notes = {e["node"]["note"] for e in result.data["page"]["edges"]}
    assert notes == {"(hidden)"}


async def test_a_resolvers_arguments_are_coerced_once_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same field node and variables give the same arguments: one coercion for the
    field's every entry, and each response key its own."""
    coerced: list[str] = []

    def counting(field: Any, node: Any, *args: Any, **kwargs: Any) -> Any:
        coerced.append(node.alias.value if node.alias else node.name.value)
        return get_argument_values(field, node, *args, **kwargs)

    monkeypatch.setattr(execution, "get_argument_values", counting)
    document = _document(SELECTIONS["a resolver with arguments"], "page")
    for _ in range(2):  # and again for the next request
        lean = await LEAN.execute(document, variable_values={"case": "plain"})
        assert lean.errors is None
        assert len(lean.data["page"]["edges"]) >= 3
    assert sorted(coerced) == ["again", "again", "scaled", "scaled"]
    assert _answer(lean) == _answer(await CORE.execute(document, variable_values={"case": "plain"}))


async def test_resolvers_that_need_not_wait_complete_without_a_task() -> None:
    """Coroutines that finish without waiting (a loader's rows read ahead) are run on the
    spot: no task per value, where graphql-core gathers them in one task each."""
    loop = asyncio.get_running_loop()
    started: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coroutine: Any, **kwargs: Any) -> Any:
        started.append(getattr(coroutine, "__qualname__", type(coroutine).__name__))
        return asyncio.Task(coroutine, loop=loop, **kwargs)

    document = _document(SELECTIONS["awaited resolvers inside"], "page")
    previous = loop.get_task_factory()
    loop.set_task_factory(factory)
    try:
        lean = await LEAN.execute(document, variable_values={"case": "plain"})
        lean_tasks, started[:] = list(started), []
        core = await CORE.execute(document, variable_values={"case": "plain"})
    finally:
        loop.set_task_factory(previous)
    assert _answer(lean) == _answer(core)
    assert lean.errors is None
    assert lean_tasks == []
    assert len(started) >= 5  # graphql-core: one per entry at least
