"""Generated operations and malformed payloads against a real gateway (`billgraph serve`), on
SQLite and on PostgreSQL.

schemathesis reads the schema by introspection and, for every query and mutation field,
generates valid operations (positive) and invalid ones (negative: missing or mistyped
arguments). Positive operations also get the ids of objects that exist (customers, wallets,
ledger entries, spare API keys, idempotency keys, plans, subscriptions, invoices, a test
clock), seeded before the run and captured from every answer, so mutations do real work:
credits, debits, replays, updates, deletions, revocations, subscriptions, payments, clocks
moved. Hypothesis is derandomized: a run generates the same operations every time.

Every answer: no 5xx, no INTERNAL_SERVER_ERROR, nothing of the server's internals (a stack
trace, SQL, a driver's name), every error coded with a request id, and schemathesis's own
checks (no server error, invalid operations refused, answers that keep the schema's
promises). After the run the ledger invariant holds over the whole database.

The corpus: raw payloads that once crashed or leaked. A request that cannot be read (bytes,
nesting, numbers) is a 400; a document that is read but refused (a malformed id, a huge
literal, a fragment chain, unstorable text in a query argument) is a 200 with BAD_USER_INPUT,
as GraphQL over HTTP asks of application/json; unstorable text in a mutation's input is its
typed ValidationError naming the field. Every error carries a code and the request id.
"""

import asyncio
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import graphql
import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.generation.feedback import FeedbackSources

from billgraph.db.engine import Database
from tests.conftest import assert_ledger_invariant
from tests.support.leaks import assert_no_leak
from tests.support.server import LiveServer, create_organization, live_server

Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Case = schemathesis.Case[Any]

# Examples per operation and generation mode (26 operations, positive and negative), more
# for the one that moves money.
EXAMPLES = 50
EXAMPLES_OF = {"Mutation.createLedgerEntry": 150}
MINIMUM_OPERATIONS = 1_000

# Amounts and thresholds: mostly ones a wallet accepts, so postings happen, and any integer
# (out of BigInt's range too) the rest of the time.
schemathesis.graphql.scalar(
    "BigInt",
    st.one_of(st.integers(1, 50_000), st.integers()).map(schemathesis.graphql.nodes.Int),
)


@dataclass
class Gateway:
    """A real gateway on one backend, with an organization of its own and one customer."""

    server: LiveServer
    api_key: str
    customer_id: str
    wallet_id: str

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/graphql"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def _graphql(session: requests.Session, url: str, query: str) -> dict[str, Any]:
    response = session.post(url, json={"query": query}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict) and "errors" not in body, body
    return cast(dict[str, Any], body)


@pytest.fixture(scope="module")
def gateway(database: Database, database_url: str) -> Iterator[Gateway]:
    organization = create_organization(database_url, "Generated Operations")
    with live_server(database_url) as server, requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {organization['api_key']}"
        created = _graphql(
            session,
            f"{server.base_url}/graphql",
            """mutation { createCustomer(input: {email: "corpus@example.com"}) {
                ... on CreateCustomerSuccess { customer { id } wallet { id } } } }""",
        )["data"]["createCustomer"]
        yield Gateway(
            server, organization["api_key"], created["customer"]["id"], created["wallet"]["id"]
        )


# --- generated operations ------------------------------------------------------------------


@dataclass
class Seeds:
    """Objects that exist, for arguments schemathesis does not fill from what it saw."""

    node_ids: list[str] = field(default_factory=list)
    customer_ids: list[str] = field(default_factory=list)
    wallet_ids: list[str] = field(default_factory=list)
    disposable_customer_ids: list[str] = field(default_factory=list)
    spare_api_key_ids: list[str] = field(default_factory=list)
    idempotency_keys: list[str] = field(default_factory=list)
    plan_ids: list[str] = field(default_factory=list)
    disposable_plan_ids: list[str] = field(default_factory=list)  # archivePlan's
    subscription_ids: list[str] = field(default_factory=list)
    invoice_ids: list[str] = field(default_factory=list)
    test_clock_ids: list[str] = field(default_factory=list)
    # (document, data) of each seeding request, for schemathesis's pool of captured ids.
    answers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def seed(session: requests.Session, url: str) -> Seeds:
    seeds = Seeds()

    def send(query: str) -> dict[str, Any]:
        data: dict[str, Any] = _graphql(session, url, query)["data"]
        seeds.answers.append((query, data))
        return data

    for number in range(6):
        created = send(
            f"""mutation {{ createCustomer(input: {{email: "seed-{number}@example.com",
                name: "Seed {number}", externalId: "seed-{number}"}}) {{
                ... on CreateCustomerSuccess {{ customer {{ id }} wallet {{ id }} }} }} }}"""
        )["createCustomer"]
        customer_id = created["customer"]["id"]
        seeds.node_ids += [customer_id, created["wallet"]["id"]]
        if number >= 4:  # deleteCustomer's; the others stay for the rest of the run
            seeds.disposable_customer_ids.append(customer_id)
        else:
            seeds.customer_ids.append(customer_id)
        for currency, amount in (("USD", 100_000), ("EUR", 500)):
            key = f"seed-{number}-{currency}"
            posted = send(
                f"""mutation {{ createLedgerEntry(input: {{customerId: "{customer_id}",
                    amount: {amount}, currency: {currency}, entryType: CREDIT,
                    idempotencyKey: "{key}", reason: "seed"}}) {{
                    ... on CreateLedgerEntrySuccess {{ entry {{ id }} wallet {{ id }} }} }} }}"""
            )["createLedgerEntry"]
            seeds.node_ids += [posted["entry"]["id"], posted["wallet"]["id"]]
            seeds.wallet_ids.append(posted["wallet"]["id"])
            seeds.idempotency_keys.append(key)
    for number in range(3):  # revokeApiKey's: never the key the run itself uses
        created = send(
            f"""mutation {{ createApiKey(input: {{name: "spare {number}", scopes: [READ, WRITE]}}) {{
                ... on CreateApiKeySuccess {{ apiKey {{ id }} }} }} }}"""
        )["createApiKey"]
        seeds.spare_api_key_ids.append(created["apiKey"]["id"])
    seeds.node_ids += seeds.spare_api_key_ids
    seeds.node_ids.append(send("{ viewer { id } }")["viewer"]["id"])
    seed_billing(send, seeds)
    # What schemathesis's pool captures (it reads no fragments): the ids of every customer
    # and wallet, then those of later answers.
    send("{ customers(first: 100) { edges { node { id wallets { id } } } } }")
    return seeds


def seed_billing(send: Any, seeds: Seeds) -> None:
    """Plans (one with a trial), a test clock with a customer on it, and subscriptions: one
    paid by credit, one on trial, one INCOMPLETE with its invoice OPEN."""
    for name, trial in (("Seed monthly", 0), ("Seed trial", 14), ("Seed disposable", 0)):
        plan = send(
            f"""mutation {{ createPlan(input: {{name: "{name}", amount: 500, currency: USD,
                interval: MONTH, trialDays: {trial}}}) {{
                ... on CreatePlanSuccess {{ plan {{ id }} }} }} }}"""
        )["createPlan"]["plan"]["id"]
        (seeds.disposable_plan_ids if "disposable" in name else seeds.plan_ids).append(plan)
    clock = send(
        """mutation { createTestClock(input: {frozenTime: "2030-01-31T00:00:00Z", name: "seed"}) {
            ... on CreateTestClockSuccess { testClock { id } } } }"""
    )["createTestClock"]["testClock"]["id"]
    seeds.test_clock_ids.append(clock)
    on_clock = send(
        f"""mutation {{ createCustomer(input: {{email: "seed-clock@example.com",
            testClockId: "{clock}"}}) {{ ... on CreateCustomerSuccess {{ customer {{ id }} }} }} }}"""
    )["createCustomer"]["customer"]["id"]
    monthly, trial = seeds.plan_ids
    for number, (customer, plan) in enumerate(
        ((seeds.customer_ids[0], monthly), (seeds.customer_ids[1], trial), (on_clock, monthly))
    ):
        made = send(
            f"""mutation {{ createSubscription(input: {{customerId: "{customer}",
                planId: "{plan}", idempotencyKey: "seed-subscription-{number}",
                successUrl: "https://shop.example/ok", cancelUrl: "https://shop.example/no"}}) {{
                ... on CreateSubscriptionSuccess {{ subscription {{ id
                  invoices(first: 5) {{ edges {{ node {{ id }} }} }} }} }} }} }}"""
        )["createSubscription"]["subscription"]
        seeds.subscription_ids.append(made["id"])
        seeds.invoice_ids += [edge["node"]["id"] for edge in made["invoices"]["edges"]]
    seeds.node_ids += seeds.plan_ids + seeds.disposable_plan_ids
    seeds.node_ids += seeds.subscription_ids + seeds.invoice_ids + [clock]


def config(seeds: Seeds) -> schemathesis.Config:
    """schemathesis's configuration: its checks, and values that exist or that the rules
    accept, drawn for some arguments of positive operations."""
    dictionaries = {
        "emails": [f"generated-{n}@example.com" for n in range(6)] + ["seed-0@example.com"],
        "names": ["Ada Lovelace", "Grace Hopper", "Émile Zola", "张伟"],
        "external-ids": ["ext-1", "ext-2", "seed-1"],
        "reasons": ["top-up", "monthly usage", "refund"],
        # Mostly fresh keys (a posting), some used ones (a replay, or an idempotency conflict).
        "idempotency-keys": [f"generated-{n}" for n in range(40)] + seeds.idempotency_keys,
        "api-key-names": ["reporting", "ci"],
        "urls": ["https://shop.example/paid?s={CHECKOUT_SESSION_ID}", "http://127.0.0.1:9/x"],
        "node-ids": seeds.node_ids,
        "customer-ids": seeds.customer_ids,
        "any-customer-ids": seeds.customer_ids + seeds.disposable_customer_ids,
        "wallet-ids": seeds.wallet_ids,
        "disposable-customer-ids": seeds.disposable_customer_ids,
        "spare-api-key-ids": seeds.spare_api_key_ids,
        "plan-ids": seeds.plan_ids,
        "disposable-plan-ids": seeds.disposable_plan_ids,
        "subscription-ids": seeds.subscription_ids,
        "invoice-ids": seeds.invoice_ids,
        "test-clock-ids": seeds.test_clock_ids,
        "plan-names": ["Pro", "Team yearly"],
        "times": ["2030-02-27T00:00:00Z", "2030-03-01T12:00:00+09:00", "2030-06-15T00:00:00Z"],
    }
    parameters = {
        "Mutation.createCustomer.input.email": "emails",
        "Mutation.createCustomer.input.name": "names",
        "Mutation.createCustomer.input.externalId": "external-ids",
        "Mutation.updateCustomer.input.email": "emails",
        "Mutation.updateCustomer.input.name": "names",
        "Mutation.updateCustomer.input.externalId": "external-ids",
        "Mutation.createLedgerEntry.input.reason": "reasons",
        "Mutation.createLedgerEntry.input.idempotencyKey": "idempotency-keys",
        "Mutation.createApiKey.input.name": "api-key-names",
        "Query.customers.email": "emails",
        "Organization.customers.email": "emails",
        "Query.node.id": "node-ids",
        "Query.customer.id": "any-customer-ids",
        "Query.wallet.id": "wallet-ids",
        "Mutation.updateCustomer.input.customerId": "customer-ids",
        "Mutation.createLedgerEntry.input.customerId": "customer-ids",
        "Mutation.updateWallet.input.walletId": "wallet-ids",
        "Mutation.deleteCustomer.id": "disposable-customer-ids",
        "Mutation.revokeApiKey.id": "spare-api-key-ids",
        "Mutation.createCheckoutSession.input.customerId": "customer-ids",
        "Mutation.createCheckoutSession.input.idempotencyKey": "idempotency-keys",
        "Mutation.createCheckoutSession.input.successUrl": "urls",
        "Mutation.createCheckoutSession.input.cancelUrl": "urls",
        "Mutation.createPlan.input.name": "plan-names",
        "Mutation.archivePlan.id": "disposable-plan-ids",
        "Mutation.createSubscription.input.customerId": "customer-ids",
        "Mutation.createSubscription.input.planId": "plan-ids",
        "Mutation.createSubscription.input.idempotencyKey": "idempotency-keys",
        "Mutation.createSubscription.input.successUrl": "urls",
        "Mutation.createSubscription.input.cancelUrl": "urls",
        "Mutation.cancelSubscription.input.subscriptionId": "subscription-ids",
        "Mutation.resumeSubscription.id": "subscription-ids",
        "Mutation.changeSubscriptionPlan.input.subscriptionId": "subscription-ids",
        "Mutation.changeSubscriptionPlan.input.planId": "plan-ids",
        "Mutation.payInvoice.input.invoiceId": "invoice-ids",
        "Mutation.payInvoice.input.idempotencyKey": "idempotency-keys",
        "Mutation.voidInvoice.id": "invoice-ids",
        "Mutation.createTestClock.input.frozenTime": "times",
        "Mutation.advanceTestClock.input.testClockId": "test-clock-ids",
        "Mutation.advanceTestClock.input.frozenTime": "times",
        "Mutation.createCustomer.input.testClockId": "test-clock-ids",
    }
    return schemathesis.Config.from_dict(
        {
            "checks": {
                # A value its type allows but the rules refuse (`first: 5000`, an email
                # without "@") is a refusal the client can act on, not a failure.
                "positive_data_acceptance": {"enabled": False},
            },
            "dictionaries": {name: {"values": values} for name, values in dictionaries.items()},
            "parameters": {
                key: {"dictionary": name, "probability": 0.6} for key, name in parameters.items()
            },
        }
    )


def _with_typename(document: str) -> str:
    """`document` with `__typename` selected on its root field: which member of a result
    union answered."""
    parsed = graphql.parse(document)
    operation = parsed.definitions[0]
    assert isinstance(operation, graphql.OperationDefinitionNode)
    root = operation.selection_set.selections[0]
    assert isinstance(root, graphql.FieldNode)
    if root.selection_set is None:
        return document
    typename = graphql.FieldNode(name=graphql.NameNode(value="__typename"))
    selections = (typename, *root.selection_set.selections)
    root = dataclasses.replace(
        root, selection_set=dataclasses.replace(root.selection_set, selections=selections)
    )
    selections = (root, *operation.selection_set.selections[1:])
    operation = dataclasses.replace(
        operation, selection_set=dataclasses.replace(operation.selection_set, selections=selections)
    )
    return graphql.print_ast(dataclasses.replace(parsed, definitions=(operation,)))


@dataclass
class Tally:
    sent: Counter[str] = field(default_factory=Counter)  # per mode
    per_operation: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)  # result __typename / error code
    failures: dict[str, str] = field(default_factory=dict)  # first of each kind

    @property
    def total(self) -> int:
        return sum(self.sent.values())


def check_answer(response: schemathesis.Response, tally: Tally, sent: str) -> None:
    """The checks of every answer beyond schemathesis's own (`sent`: the operation)."""
    text = response.content.decode("utf-8", errors="replace")
    assert response.status_code < 500, f"HTTP {response.status_code}: {text[:2000]}"
    assert_no_leak(text, sent)
    body = json.loads(text)
    assert isinstance(body, dict), text[:2000]
    for error in body.get("errors") or ():
        extensions = error.get("extensions") or {}
        assert isinstance(extensions.get("code"), str), f"an error without a code: {text[:2000]}"
        assert extensions.get("requestId"), f"an error without a request id: {text[:2000]}"
        tally.outcomes[f"error {extensions['code']}"] += 1
    for value in (body.get("data") or {}).values():
        if isinstance(value, dict) and "__typename" in value:
            tally.outcomes[value["__typename"]] += 1


@dataclass
class Run:
    """One backend's run: the session, schemathesis's pool of captured ids, what it saw."""

    session: requests.Session
    pool: Any
    tally: Tally = field(default_factory=Tally)
    # Answers for the pool once the current operation's run is over: a strategy that
    # changed under a Hypothesis run would make it inconsistent.
    answers: list[tuple[Operation, Case, schemathesis.Response]] = field(default_factory=list)

    def operation(self, operation: Operation, mode: GenerationMode) -> None:
        """Send the generated operations of one field in one mode."""
        feedback = FeedbackSources(extra_data_source=self.pool)

        @settings(
            max_examples=EXAMPLES_OF.get(operation.label, EXAMPLES),
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode, feedback=feedback))
        def send(case: Case) -> None:
            assert isinstance(case.body, str)
            case.body = _with_typename(case.body)
            response = case.call(session=self.session, timeout=30)
            # An operation without arguments has no invalid form: it is generated valid.
            self.record(operation, case, case.meta.generation.mode if case.meta else mode, response)

        send()
        for answered, case, response in self.answers:
            self.pool.record_response(operation=answered, response=response, case=case)
        self.answers.clear()

    def record(
        self,
        operation: Operation,
        case: Case,
        mode: GenerationMode,
        response: schemathesis.Response,
    ) -> None:
        tally = self.tally
        tally.sent[mode.value] += 1
        tally.per_operation[operation.label] += 1
        tally.statuses[response.status_code] += 1
        self.answers.append((operation, case, response))
        try:
            check_answer(response, tally, str(case.body))
            case.validate_response(response)
        except Exception as exc:  # noqa: BLE001 - every kind of failure is reported, the run goes on
            kind = f"{operation.label} {mode.value} {type(exc).__name__}"
            if kind not in tally.failures:
                tally.failures[kind] = (
                    f"{kind}\nrequest: {case.body!s}\nresponse: HTTP "
                    f"{response.status_code} {response.content[:1500]!r}\n{exc}"
                )[:4000]


def run_generated(gateway: Gateway) -> Tally:
    with requests.Session() as session:
        session.headers.update(gateway.auth)
        seeds = seed(session, gateway.url)
        introspection = session.post(
            gateway.url, json={"query": graphql.get_introspection_query()}, timeout=30
        )
        assert "errors" not in introspection.json(), (
            f"the standard introspection query (GraphiQL's, every code generator's) is refused: "
            f"{introspection.text[:2000]}"
        )
        schema = schemathesis.graphql.from_url(
            gateway.url, headers=gateway.auth, config=config(seeds)
        )
        pool = schema.create_extra_data_source()
        for document, data in seeds.answers:
            operation_node = graphql.parse(document).definitions[0]
            assert isinstance(operation_node, graphql.OperationDefinitionNode)
            pool.capture(operation_node=operation_node, response_data=data)
        run = Run(session, pool)
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result  # a schema schemathesis can read
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                run.operation(operation, mode)
        # The run never revoked its own key: every answer above was the API's, not a 401.
        still = session.post(gateway.url, json={"query": "{ viewer { id } }"}, timeout=30)
        assert still.status_code == 200 and "errors" not in still.json(), still.text
    return run.tally


async def test_generated_operations_find_no_server_error(
    gateway: Gateway, database: Database
) -> None:
    started = time.monotonic()
    tally = await asyncio.to_thread(run_generated, gateway)
    elapsed = time.monotonic() - started
    print(
        f"\n{tally.total} generated operations in {elapsed:.1f} s: {dict(tally.sent)}\n"
        f"per operation: {dict(tally.per_operation)}\nstatuses: {dict(tally.statuses)}\n"
        f"outcomes: {dict(tally.outcomes.most_common())}"
    )
    assert not tally.failures, "\n\n".join(tally.failures.values())
    assert tally.total >= MINIMUM_OPERATIONS, dict(tally.per_operation)
    assert tally.sent["positive"] >= MINIMUM_OPERATIONS // 2, dict(tally.sent)
    assert tally.sent["negative"] >= MINIMUM_OPERATIONS // 4, dict(tally.sent)
    assert set(tally.statuses) <= {200, 400}, dict(tally.statuses)
    # Real work was done: postings, refusals and typed errors, not only validation errors.
    for outcome in ("CreateLedgerEntrySuccess", "CreateCustomerSuccess", "NotFoundError"):
        assert tally.outcomes[outcome] > 0, dict(tally.outcomes)
    await assert_ledger_invariant(database)


# --- the corpus of malformed payloads --------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    body: bytes | None = None
    content_type: str | None = "application/json"
    method: str = "POST"
    params: dict[str, str] | None = None
    # What answers it: a request that cannot be read is a 400; a document that can be read
    # but is refused is a 200 with BAD_USER_INPUT (GraphQL over HTTP with application/json);
    # text a mutation cannot store is its typed ValidationError naming `field`.
    answer: str = "400"
    field: str | None = None


def _json_with(template: str, raw: bytes) -> bytes:
    """`template` as UTF-8 JSON with RAW in it replaced by `raw` bytes, verbatim."""
    head, tail = template.split("RAW")
    return head.encode() + raw + tail.encode()


DIGITS_5000 = "9" * 5_000

CUSTOMERS_BY_EMAIL = "query($e: String) { customers(email: $e) { edges { node { id } } } }"
REFUSED = "{ __typename ... on ValidationError { field } }"
CREATE_CUSTOMER = (
    "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) " + REFUSED + " }"
)
CREATE_ENTRY = (
    "mutation($input: CreateLedgerEntryInput!) { createLedgerEntry(input: $input) " + REFUSED + " }"
)
UPDATE_WALLET = (
    "mutation($input: UpdateWalletInput!) { updateWallet(input: $input) { __typename } }"
)
CREATE_API_KEY = (
    "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) " + REFUSED + " }"
)
FIRST = "query($first: Int) { customers(first: $first) { edges { node { id } } } }"

# Lone surrogates: escaped in the JSON text, and as raw (invalid UTF-8) bytes.
SURROGATES = {
    "escaped-d800": rb"\ud800",
    "escaped-dfff": rb"\udfff",
    "raw-ed-a0-80": b"\xed\xa0\x80",
}


def _surrogate_payloads(customer_id: str) -> dict[str, Payload]:
    entry = (
        f'{{"customerId": "{customer_id}", "amount": 100, "currency": "USD", '
        '"entryType": "CREDIT", '
    )
    # place: (document, variables, the input field a mutation names; None for a query argument)
    places = {
        "email": (CREATE_CUSTOMER, '{"input": {"email": "adaRAW@example.com"}}', "email"),
        "name": (
            CREATE_CUSTOMER,
            '{"input": {"email": "name@example.com", "name": "AdaRAW"}}',
            "name",
        ),
        "externalId": (
            CREATE_CUSTOMER,
            '{"input": {"email": "ext@example.com", "externalId": "extRAW"}}',
            "externalId",
        ),
        "reason": (
            CREATE_ENTRY,
            '{"input": ' + entry + '"idempotencyKey": "surrogate-reason", "reason": "rRAW"}}',
            "reason",
        ),
        "idempotencyKey": (
            CREATE_ENTRY,
            '{"input": ' + entry + '"idempotencyKey": "kRAW"}}',
            "idempotencyKey",
        ),
        "customers-email": (CUSTOMERS_BY_EMAIL, '{"e": "adaRAW@example.com"}', None),
        "api-key-name": (
            CREATE_API_KEY,
            '{"input": {"name": "keyRAW", "scopes": ["READ"]}}',
            "name",
        ),
    }
    payloads = {}
    for place, (query, variables, named) in places.items():
        for form, raw in SURROGATES.items():
            body = _json_with(f'{{"query": {json.dumps(query)}, "variables": {variables}}}', raw)
            if form.startswith("raw"):  # invalid UTF-8: the request cannot be read
                payload = Payload(body)
            elif named is None:
                payload = Payload(body, answer="bad_user_input")
            else:
                payload = Payload(body, answer="validation_error", field=named)
            payloads[f"surrogate-{place}-{form}"] = payload
    return payloads


def corpus(customer_id: str, wallet_id: str) -> dict[str, Payload]:
    """The malformed payloads, about this customer and wallet."""

    def body(query: str, variables: str = "{}") -> bytes:
        return f'{{"query": {json.dumps(query)}, "variables": {variables}}}'.encode()

    fragments = (
        " ".join(f"fragment F{i} on Organization {{ ...F{i + 1} }}" for i in range(499))
        + " fragment F499 on Organization { name }"
    )
    nested_arrays = "[" * 1_500 + "]" * 1_500
    nested_objects = '{"a": ' * 1_500 + "1" + "}" * 1_500
    entry_literal = (
        f'mutation {{ createLedgerEntry(input: {{customerId: "{customer_id}", '
        f"amount: {DIGITS_5000}, currency: USD, entryType: CREDIT, "
        f'idempotencyKey: "literal-digits"}}) {{ __typename }} }}'
    )
    return {
        "invalid-utf8-body": Payload(b"\xff\xfe\x00"),
        "variables-byte-ff": Payload(
            _json_with(
                f'{{"query": {json.dumps(CUSTOMERS_BY_EMAIL)}, "variables": {{"e": "RAW"}}}}',
                b"\xff",
            )
        ),
        "charset-latin-1": Payload(
            '{"query": "{ customers(email: \\"caf\u00e9@example.com\\") { edges { node { id } } } }"}'.encode(
                "latin-1"
            ),
            content_type="application/json; charset=latin-1",
        ),
        "nested-arrays-1500": Payload(body("{ viewer { name } }", f'{{"v": {nested_arrays}}}')),
        "nested-objects-1500": Payload(body("{ viewer { name } }", f'{{"v": {nested_objects}}}')),
        "amount-5000-digits": Payload(
            body(
                CREATE_ENTRY,
                f'{{"input": {{"customerId": "{customer_id}", "amount": {DIGITS_5000}, '
                '"currency": "USD", "entryType": "CREDIT", "idempotencyKey": "digits"}}',
            )
        ),
        "low-balance-threshold-5000-digits": Payload(
            body(
                UPDATE_WALLET,
                f'{{"input": {{"walletId": "{wallet_id}", "lowBalanceThreshold": {DIGITS_5000}}}}}',
            )
        ),
        "first-5000-digits": Payload(body(FIRST, f'{{"first": {DIGITS_5000}}}')),
        "get-variables-5000-digits": Payload(
            method="GET",
            content_type=None,
            params={"query": FIRST, "variables": f'{{"first": {DIGITS_5000}}}'},
        ),
        "operation-name-lone-surrogate": Payload(
            b'{"query": "query Q { viewer { name } }", "operationName": "Q\\ud800"}'
        ),
        "empty-customer-id": Payload(body('{ customer(id: "") { id } }'), answer="bad_user_input"),
        **_surrogate_payloads(customer_id),
        "int-literal-5000-digits-first": Payload(
            body(f"{{ customers(first: {DIGITS_5000}) {{ edges {{ node {{ id }} }} }} }}"),
            answer="bad_user_input",
        ),
        "int-literal-5000-digits-amount": Payload(body(entry_literal), answer="bad_user_input"),
        "fragment-chain-500": Payload(
            body("{ viewer { ...F0 } } " + fragments), answer="bad_user_input"
        ),
    }


# The names, without a gateway: the payloads themselves need its ids.
_NAMES = list(corpus(customer_id="", wallet_id=""))


@pytest.mark.parametrize("name", _NAMES)
def test_malformed_payload_gets_its_coded_answer(gateway: Gateway, name: str) -> None:
    payload = corpus(gateway.customer_id, gateway.wallet_id)[name]
    headers = dict(gateway.auth)
    if payload.content_type is not None:
        headers["Content-Type"] = payload.content_type
    response = httpx.request(
        payload.method,
        gateway.url,
        content=payload.body,
        params=payload.params,
        headers=headers,
        timeout=30,
    )
    text = response.content.decode("utf-8", errors="replace")
    assert_no_leak(text)
    assert response.headers.get("content-type", "").split(";")[0].endswith("json"), text[:2000]
    answer = response.json()
    if payload.answer == "validation_error":
        assert response.status_code == 200, (response.status_code, text[:2000])
        assert "errors" not in answer, text[:2000]
        (result,) = answer["data"].values()
        assert result == {"__typename": "ValidationError", "field": payload.field}, text[:2000]
        return
    expected = 400 if payload.answer == "400" else 200
    assert response.status_code == expected, (response.status_code, text[:2000])
    codes = {e["extensions"]["code"] for e in answer["errors"]}
    assert codes <= {"BAD_REQUEST", "BAD_USER_INPUT"}, text[:2000]
    if payload.answer == "bad_user_input":
        assert codes == {"BAD_USER_INPUT"}, text[:2000]
    assert all(e["extensions"]["requestId"] for e in answer["errors"]), text[:2000]
