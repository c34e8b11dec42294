"""Every domain error a mutation's code can raise is in that mutation's result union.

The proof walks the code: from each mutation's resolver, through every billgraph function it
names (services, repositories, validation, id decoding), collecting the domain error classes
it names. Naming is more than raising (an `except` clause names a class too), so the set is a
superset of what can escape: if the union holds it, no domain error can become an
INTERNAL_SERVER_ERROR.
"""

import ast
import inspect
import textwrap
from types import FunctionType, ModuleType
from typing import Any

import pytest

from billgraph.core import errors
from billgraph.customers import service as customer_service
from billgraph.graphql import errors as graphql_errors
from billgraph.graphql.errors import UndeclaredError, UserError, result
from billgraph.graphql.schema import Mutation


def _resolve(node: ast.AST, namespace: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, namespace)
        if isinstance(base, (ModuleType, type)):
            return getattr(base, node.attr, None)
    return None


def reachable_errors(function: FunctionType) -> set[type[errors.BillingError]]:
    """The domain error classes named by `function` and by every billgraph function it names,
    transitively (the mapping in graphql/errors.py, which names them all, excepted)."""
    found: set[type[errors.BillingError]] = set()
    seen: set[FunctionType] = set()

    def visit(candidate: Any) -> None:
        if inspect.ismethod(candidate):
            candidate = candidate.__func__
        if isinstance(candidate, (classmethod, staticmethod)):
            candidate = candidate.__func__
        if not isinstance(candidate, FunctionType):
            return
        candidate = inspect.unwrap(candidate)
        module = candidate.__module__ or ""
        generated = candidate.__code__.co_filename.startswith("<")  # dataclass methods
        if (
            candidate in seen
            or generated
            or not module.startswith("billgraph.")
            or module == graphql_errors.__name__
        ):
            return
        seen.add(candidate)
        tree = ast.parse(textwrap.dedent(inspect.getsource(candidate)))
        for node in ast.walk(tree):
            target = _resolve(node, candidate.__globals__)
            if isinstance(target, type) and issubclass(target, errors.BillingError):
                if target is not errors.BillingError:
                    found.add(target)
            elif isinstance(target, type) and target.__module__.startswith("billgraph."):
                for member in vars(target).values():
                    visit(member)
            else:
                visit(target)

    visit(function)
    return found


def mutations() -> list[tuple[str, FunctionType, tuple[type[errors.BillingError], ...]]]:
    declared = []
    for field in Mutation.__strawberry_definition__.fields:
        resolve = field.base_resolver.wrapped_func  # type: ignore[union-attr]
        resolver, raises = resolve.declared
        declared.append((field.name, resolver, raises))
    return declared


@pytest.mark.parametrize(
    ("name", "resolver", "raises"), mutations(), ids=[n for n, _, _ in mutations()]
)
def test_the_union_holds_every_domain_error_the_mutation_can_raise(
    name: str, resolver: FunctionType, raises: tuple[type[errors.BillingError], ...]
) -> None:
    undeclared = reachable_errors(resolver) - set(raises)
    assert not undeclared, f"{name} can raise {sorted(e.__name__ for e in undeclared)}"


def test_every_mutation_declares_its_errors() -> None:
    names = {name for name, _, _ in mutations()}
    assert {"create_ledger_entry", "create_customer", "revoke_api_key"} <= names
    assert all(raises for _, _, raises in mutations())


def test_the_walk_finds_errors_raised_deep_in_a_service() -> None:
    # update() raises NotFoundError through get(), ConflictError through _ensure_unique(),
    # and ValidationError through the validation helpers.
    assert reachable_errors(customer_service.update) >= {
        errors.NotFoundError,
        errors.ConflictError,
        errors.ValidationError,
    }
    ledger_entry = next(r for n, r, _ in mutations() if n == "create_ledger_entry")
    assert errors.InsufficientBalanceError in reachable_errors(ledger_entry)
    assert errors.IdempotencyConflictError in reachable_errors(ledger_entry)


class _Success:
    pass


class _Context:
    """Counts the times the loaders were made fresh."""

    def __init__(self) -> None:
        self.fresh = 0

    def fresh_loaders(self) -> None:
        self.fresh += 1


class _Info:
    def __init__(self) -> None:
        self.context = _Context()


async def test_a_declared_error_is_returned_as_its_graphql_type() -> None:
    @result("ProbeResult", _Success, errors.NotFoundError)
    async def probe(info: Any) -> _Success:
        raise errors.NotFoundError("Gone.")

    outcome = await probe(_Info())
    assert isinstance(outcome, UserError)
    assert (outcome.code, outcome.message) == ("NOT_FOUND", "Gone.")


async def test_an_undeclared_error_is_not_passed_off_as_a_result() -> None:
    @result("ProbeResult", _Success, errors.NotFoundError)
    async def probe(info: Any) -> _Success:
        raise errors.ConflictError("Taken.", "email")

    with pytest.raises(UndeclaredError):
        await probe(info=_Info())


async def test_a_mutation_reads_afresh_before_and_after_it_runs() -> None:
    """Earlier mutation fields of the document may have changed what the loaders hold, and
    this one's write may change what it loaded: its resolver and its payload read afresh."""
    seen: list[int] = []

    @result("ProbeResult", _Success, errors.NotFoundError)
    async def probe(self: object, info: Any) -> _Success:
        seen.append(info.context.fresh)
        return _Success()

    info = _Info()
    await probe(None, info)
    assert (seen, info.context.fresh) == ([1], 2)
    await probe(None, info=info)
    assert (seen, info.context.fresh) == ([1, 3], 4)


def test_a_mutation_without_info_is_refused() -> None:
    with pytest.raises(TypeError, match="info"):

        @result("ProbeResult", _Success, errors.NotFoundError)
        async def probe() -> _Success:
            return _Success()
