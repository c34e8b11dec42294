"""Checkout sessions and their webhook deliveries: sessions opened through billgraph/checkout
(the service createCheckoutSession calls), `checkout.session.completed` events shaped and
signed as the sandbox's, sent by closed-loop senders to `POST /webhooks/sandbox`, and the
check, on what is stored, that every session was credited exactly once."""

import asyncio
import itertools
import json
import random
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import text

from bench.harness.cpu import CpuMeter
from bench.harness.http import RawConnection, RequestFailed
from bench.harness.processes import HOST, Gateway
from bench.harness.progress import progress
from bench.harness.report import percentile
from bench.harness.seed import SEED_CONCURRENCY, Seeded
from billgraph.adapters import sandbox
from billgraph.adapters.base import Provider
from billgraph.checkout import service as checkout
from billgraph.checkout.providers import Providers
from billgraph.checkout.webhooks import Outcome, credit_key
from billgraph.db.engine import Database
from billgraph.settings import Settings

# The gateway verifies with it (BILLGRAPH_SANDBOX_WEBHOOK_SECRET), the senders sign with it.
WEBHOOK_SECRET = "whsec_bench_" + secrets.token_hex(16)
WEBHOOK_PATH = "/webhooks/sandbox"
CURRENCY = "USD"
# A duplicate goes out 1 to RETRY_WINDOW deliveries after its original: with 32 senders the
# nearest race the original (both in flight), the others arrive once it has been answered.
RETRY_WINDOW = 256
PROGRESS_SECONDS = 5.0


def gateway_env() -> dict[str, str]:
    """What the gateway needs to verify the senders' signatures."""
    return {"BILLGRAPH_SANDBOX_WEBHOOK_SECRET": WEBHOOK_SECRET}


@dataclass(frozen=True)
class Session:
    id: int
    provider_session_id: str
    customer_id: int
    amount: int
    currency: str


def session_amount(index: int) -> int:
    """Top-ups of 5.00 to 104.00 USD, varied so that a credit of the wrong session shows."""
    return 500 + (index * 37) % 100 * 100


async def open_sessions(database: Database, seeded: Seeded, count: int) -> list[Session]:
    """`count` OPEN sandbox sessions, round-robin over the seeded customers, opened by
    checkout.service.create (as createCheckoutSession opens them: idempotency key, the
    sandbox adapter's session id, the row)."""
    settings = Settings(sandbox_webhook_secret=WEBHOOK_SECRET)
    providers = Providers(database, settings)
    customers = seeded.customer_ids
    gate = asyncio.Semaphore(SEED_CONCURRENCY)

    async def open_one(index: int) -> Session:
        request = checkout.checkout_request(
            seeded.organization_id,
            customer_id=customers[index % len(customers)],
            provider=Provider.SANDBOX,
            mode=checkout.CheckoutMode.TOP_UP,
            amount=session_amount(index),
            currency=CURRENCY,
            success_url="https://shop.example/paid?session={CHECKOUT_SESSION_ID}",
            cancel_url="https://shop.example/cart",
            idempotency_key=f"bench-top-up-{index}",
        )
        async with gate:
            created = await checkout.create(
                database, providers, request, expires_minutes=settings.checkout_expires_minutes
            )
        if created.replayed:
            raise RuntimeError(f"session {index} was a replay")
        row = created.session
        return Session(row.id, row.provider_session_id, row.customer_id, row.amount, row.currency)

    try:
        return list(await asyncio.gather(*(open_one(i) for i in range(count))))
    finally:
        await providers.close()


@dataclass(frozen=True)
class Delivery:
    event_id: str
    body: bytes
    session: Session
    duplicate: bool  # a second delivery of an event already sent
    resign: bool  # a duplicate signed anew when sent (a provider's retry); else the same header


def plan(sessions: Sequence[Session], duplicate_share: float, rng: random.Random) -> list[Delivery]:
    """One completed event per session, in random order, and duplicates of some of them so
    that `duplicate_share` of the deliveries are duplicates; half re-signed, half with the
    original's signature header."""
    order = list(sessions)
    rng.shuffle(order)
    now = int(time.time())
    originals = []
    for s in order:
        body = sandbox.completed_event(
            s.provider_session_id,
            amount=s.amount,
            currency=s.currency,
            client_reference_id=str(s.customer_id),
            metadata={"billgraph_checkout_session_id": str(s.id)},
            created=now,
        )
        originals.append(Delivery(json.loads(body)["id"], body, s, False, False))
    count = round(len(originals) * duplicate_share / (1 - duplicate_share))
    keyed = [(float(i), d) for i, d in enumerate(originals)]
    for n, i in enumerate(rng.sample(range(len(originals)), count)):
        o = originals[i]
        position = i + rng.randint(1, RETRY_WINDOW) - 0.5
        keyed.append((position, Delivery(o.event_id, o.body, o.session, True, n % 2 == 0)))
    keyed.sort(key=lambda k: k[0])
    return [d for _, d in keyed]


def signed(body: bytes) -> str:
    """The Billgraph-Signature header's value for `body`, signed now."""
    return sandbox.sign(WEBHOOK_SECRET, body, int(time.time()))


def signature(body: bytes) -> bytes:
    """The Billgraph-Signature header line for `body`, signed now."""
    return f"Billgraph-Signature: {signed(body)}\r\n".encode()


@dataclass
class WebhookResult:
    deliveries: int  # sent
    seconds: float
    latencies: list[float]  # every 2xx answer
    by_outcome: dict[str, list[float]]  # 2xx answers' latencies by the outcome they named
    errors: list[str]  # no answer or not 2xx
    duplicates_in_flight: int  # duplicates sent before their original had been answered
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def top_ups(self) -> int:
        return len(self.by_outcome.get(Outcome.CREDITED.value, []))

    @property
    def deliveries_per_second(self) -> float:
        return self.deliveries / self.seconds

    @property
    def top_ups_per_second(self) -> float:
        return self.top_ups / self.seconds

    def p_ms(self, p: float, outcome: str | None = None) -> float:
        values = self.latencies if outcome is None else self.by_outcome.get(outcome, [])
        return percentile(values, p) * 1000

    def log(self) -> None:
        c = self.cpu
        counts = ", ".join(f"{k} {len(v):,}" for k, v in sorted(self.by_outcome.items()))
        progress(
            f"  -> {self.deliveries:,} deliveries in {self.seconds:.1f} s: "
            f"{self.top_ups_per_second:,.1f} top-ups/s, {self.deliveries_per_second:,.1f} "
            f"deliveries/s, p50 {self.p_ms(50):.2f} ms, p99 {self.p_ms(99):.2f} ms; {counts}; "
            f"{len(self.errors)} errors; {self.duplicates_in_flight} duplicates sent while the "
            f"original was in flight; cores busy: client {c['load']:.2f}, gateway "
            f"{c['gateway']:.2f}, postgres {c['postgres']:.2f}, other processes {c['other']:.2f}"
        )
        for sample in self.errors[:5]:
            progress(f"  error: {sample}")


async def deliver(
    gateway: Gateway,
    deliveries: Sequence[Delivery],
    clients: int,
    meter: CpuMeter,
    answers: defaultdict[str, list[str]],
) -> WebhookResult:
    """Send `deliveries` in order from `clients` keep-alive connections, each sending its next
    when the last was answered; every answer's outcome is appended to `answers[event id]`."""
    queue = iter(deliveries)
    headers: dict[str, bytes] = {}
    latencies: list[float] = []
    by_outcome: defaultdict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    in_flight = itertools.count()
    done = itertools.count(1)
    finished = 0

    async def sender() -> None:
        nonlocal finished
        async with RawConnection(HOST, gateway.port, None, WEBHOOK_PATH) as connection:
            for d in queue:  # one iterator shared by the senders: each delivery goes once
                header = headers.get(d.event_id) if d.duplicate and not d.resign else None
                if header is None:
                    header = signature(d.body)
                    headers.setdefault(d.event_id, header)
                if d.duplicate and not answers[d.event_id]:
                    next(in_flight)
                t0 = time.perf_counter()
                try:
                    status, body = await connection.post(d.body, header)
                except RequestFailed as exc:
                    errors.append(f"{d.event_id}: no answer: {exc}")
                    continue
                finally:
                    finished = next(done)
                latency = time.perf_counter() - t0
                if not 200 <= status < 300:
                    errors.append(f"{d.event_id}: HTTP {status}: {body[:300]}")
                    continue
                try:
                    outcome = str(json.loads(body)["outcome"])
                except (ValueError, KeyError, TypeError):
                    outcome = f"unreadable answer {body[:100]!r}"
                answers[d.event_id].append(outcome)
                latencies.append(latency)
                by_outcome[outcome].append(latency)

    async def ticker(start: float) -> None:
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            elapsed = time.perf_counter() - start
            progress(
                f"  {finished:,}/{len(deliveries):,} deliveries answered, "
                f"{finished / elapsed:,.1f}/s, {len(errors)} errors"
            )

    before = meter.snapshot()
    start = time.perf_counter()
    ticking = asyncio.create_task(ticker(start))
    try:
        await asyncio.gather(*(sender() for _ in range(clients)))
    finally:
        ticking.cancel()
    elapsed = time.perf_counter() - start
    after = meter.snapshot()
    return WebhookResult(
        deliveries=len(deliveries),
        seconds=elapsed,
        latencies=latencies,
        by_outcome=dict(by_outcome),
        errors=errors,
        duplicates_in_flight=next(in_flight),
        cpu=CpuMeter.usage(before, after),
    )


def answer_problems(deliveries: Sequence[Delivery], answers: dict[str, list[str]]) -> list[str]:
    """What the answers got wrong: each event must be answered `credited` exactly once and
    `duplicate` for every other delivery."""
    sent = Counter(d.event_id for d in deliveries)
    problems = []
    for event_id, times in sent.items():
        got = Counter(answers.get(event_id, []))
        expected = Counter({Outcome.CREDITED.value: 1, Outcome.DUPLICATE.value: times - 1})
        if got != +expected:
            problems.append(f"event {event_id} sent {times}x, answered {dict(got)}")
    return problems


SESSIONS_SQL = """
SELECT id, status, amount, currency, customer_id, ledger_entry_id, provider_payment_id,
       provider_session_id
FROM checkout_sessions WHERE organization_id = :org
"""
CREDITS_SQL = """
SELECT e.id, e.idempotency_key, e.entry_type, e.amount, e.currency, w.customer_id
FROM ledger_entries e JOIN wallets w ON w.id = e.wallet_id
WHERE e.organization_id = :org AND e.idempotency_key LIKE :prefix
"""
INBOX_SQL = """
SELECT provider_event_id, outcome, checkout_session_id FROM webhook_events WHERE provider = :p
"""


async def stored_problems(
    database: Database, org: int, sessions: Sequence[Session], deliveries: Sequence[Delivery]
) -> tuple[list[str], str]:
    """What the database got wrong, and a one-line account of what it holds: every session
    COMPLETE with exactly one CREDIT of its amount on its customer's wallet (linked from the
    session, keyed by the session), per customer and in total the credits equal the sessions'
    amounts, and the inbox holds each event once, settled `credited` for its session."""
    prefix = credit_key(0).removesuffix("0")
    async with database.engine.connect() as connection:
        stored = {r.id: r for r in (await connection.execute(text(SESSIONS_SQL), {"org": org}))}
        credits = (
            await connection.execute(text(CREDITS_SQL), {"org": org, "prefix": prefix + "%"})
        ).all()
        inbox = (await connection.execute(text(INBOX_SQL), {"p": Provider.SANDBOX.value})).all()
    problems: list[str] = []
    by_key = defaultdict(list)
    for c in credits:
        by_key[c.idempotency_key].append(c)
    ours = {s.id: s for s in sessions}
    for key in by_key.keys() - {credit_key(s) for s in ours}:
        problems.append(f"a checkout credit for no session of the run: {key}")
    if len(stored) != len(ours):
        problems.append(f"{len(stored)} sessions stored, {len(ours)} opened")
    statuses = Counter(r.status for r in stored.values())
    wanted: defaultdict[int, int] = defaultdict(int)
    credited: defaultdict[int, int] = defaultdict(int)
    for s in sessions:
        row = stored.get(s.id)
        entries = by_key.get(credit_key(s.id), [])
        wanted[s.customer_id] += s.amount
        for e in entries:
            credited[e.customer_id] += e.amount if e.entry_type == "CREDIT" else -e.amount
        if row is None:
            problems.append(f"session {s.id} not stored")
            continue
        if row.status != checkout.CheckoutStatus.COMPLETE.value:
            problems.append(f"session {s.id} is {row.status}")
        if len(entries) != 1:
            problems.append(f"session {s.id}: {len(entries)} credits")
            continue
        e = entries[0]
        if (e.entry_type, e.amount, e.currency, e.customer_id) != (
            "CREDIT",
            s.amount,
            s.currency,
            s.customer_id,
        ):
            problems.append(
                f"session {s.id} ({s.amount} {s.currency}, customer {s.customer_id}) credited "
                f"{e.entry_type} {e.amount} {e.currency} to customer {e.customer_id}"
            )
        if row.ledger_entry_id != e.id:
            problems.append(f"session {s.id} links entry {row.ledger_entry_id}, credit is {e.id}")
        if row.provider_payment_id != sandbox.payment_id(s.provider_session_id):
            problems.append(f"session {s.id}: provider_payment_id {row.provider_payment_id}")
    for customer in wanted.keys() | credited.keys():
        if wanted[customer] != credited[customer]:
            problems.append(
                f"customer {customer}: credited {credited[customer]}, sessions total "
                f"{wanted[customer]}"
            )
    events = {d.event_id: d.session.id for d in deliveries}
    seen = Counter(r.provider_event_id for r in inbox)
    for r in inbox:
        if r.provider_event_id not in events:
            problems.append(f"inbox: event {r.provider_event_id} was not sent")
        elif r.outcome != Outcome.CREDITED.value or r.checkout_session_id != events.get(
            r.provider_event_id
        ):
            problems.append(
                f"inbox: event {r.provider_event_id} settled {r.outcome} for session "
                f"{r.checkout_session_id}"
            )
    for event_id in events.keys() - seen.keys():
        problems.append(f"inbox: event {event_id} missing")
    problems += [f"inbox: event {e} stored {n}x" for e, n in seen.items() if n > 1]
    total_wanted, total_credited = sum(wanted.values()), sum(credited.values())
    if total_wanted != total_credited:
        problems.append(f"credits total {total_credited}, sessions total {total_wanted}")
    account = (
        f"{statuses.get('COMPLETE', 0):,} of {len(ours):,} sessions COMPLETE; "
        f"{len(credits):,} checkout credits on {len(credited):,} customers' wallets, totalling "
        f"{total_credited:,} for session amounts of {total_wanted:,} (USD cents); inbox: "
        f"{len(inbox):,} rows for {len(events):,} distinct events sent"
    )
    return problems, account
