"""Subscriptions billed to Toss billing keys, against the fake Toss API: the key stored
encrypted, renewals charged to it, a declined renewal to dunning, and a charge whose answer
was lost settled by Toss's webhook."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from billgraph.adapters.base import Provider
from billgraph.app import create_app
from billgraph.billing import charges, payment_methods, run
from billgraph.checkout.providers import Providers
from billgraph.core.secrets import Vault
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database
from billgraph.settings import Settings
from tests.billing.helpers import Org, at, new_org
from tests.conftest import assert_ledger_invariant
from tests.support.fake_toss import (  # noqa: F401 - fixtures
    CLIENT_KEY,
    INSUFFICIENT_CARD,
    SECRET_KEY,
    SUCCESS_CARD,
    FakeToss,
    fake_toss,
    fake_toss_server,
)

ENCRYPTION_KEY = Vault.generate_key()


@pytest.fixture
def toss_settings(settings: Settings, fake_toss: FakeToss) -> Settings:  # noqa: F811
    return settings.model_copy(
        update={
            "toss_secret_key": SECRET_KEY,
            "toss_client_key": CLIENT_KEY,
            "toss_api_base": fake_toss.url,
            "encryption_key": ENCRYPTION_KEY,
            "provider_timeout_seconds": 1.0,  # a stalled charge is an unknown outcome soon
        }
    )


@pytest.fixture
async def toss_org(database: Database, toss_settings: Settings) -> AsyncIterator[Org]:
    providers = Providers(database, toss_settings)
    yield await new_org(database, providers)
    await providers.close()


async def _billing_key(org: Org, fake: FakeToss, customer: int, card: str) -> int:
    customer_key = str(uuid.uuid4())
    auth_key = fake.authorize_billing(customer_key, card)
    key = await org.providers.toss().issue_billing_key(auth_key, customer_key)
    async with unit_of_work(org.database) as unit:
        method = await payment_methods.save_billing_key(
            unit, Vault(ENCRYPTION_KEY), org.id, customer, key
        )
    assert key.billing_key not in method.secret and key.billing_key not in repr(method)
    return method.id


async def test_a_toss_billing_key_pays_the_first_invoice_and_the_renewal(
    toss_org: Org,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    org = toss_org
    customer = await org.customer(credit=3000, currency="KRW")
    method = await _billing_key(org, fake_toss, customer, SUCCESS_CARD)
    plan = await org.plan(9900, currency="KRW")
    created = await org.subscribe(
        customer, plan, method=method, provider=Provider.TOSS, now=at(1989, 1, 1)
    )
    assert created.subscription.status == "ACTIVE"
    assert created.invoice is not None
    assert (created.invoice.wallet_credit_applied, created.invoice.amount_paid) == (3000, 6900)
    before = len(fake_toss.calls("POST", "/v1/billing/"))
    await run.bill(org.database, org.providers, at(1989, 2, 1))
    invoices = await org.invoices(created.subscription.id)
    assert [(i.status, i.amount_paid) for i in invoices] == [("PAID", 6900), ("PAID", 9900)]
    assert len(fake_toss.calls("POST", "/v1/billing/")) == before + 1


async def test_a_declined_toss_renewal_goes_to_dunning(
    toss_org: Org,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    org = toss_org
    customer = await org.customer(credit=9900, currency="KRW")
    method = await _billing_key(org, fake_toss, customer, INSUFFICIENT_CARD)
    plan = await org.plan(9900, currency="KRW")
    created = await org.subscribe(
        customer, plan, method=method, provider=Provider.TOSS, now=at(1988, 1, 1)
    )
    assert created.subscription.status == "ACTIVE"  # credit paid the first
    await run.bill(org.database, org.providers, at(1988, 2, 1))
    sub = await org.subscription(created.subscription.id)
    renewal = (await org.invoices(sub.id))[-1]
    assert (sub.status, renewal.status) == ("PAST_DUE", "OPEN")
    [attempt] = await org.attempts(renewal.id)
    assert (attempt.outcome, attempt.failure_code) == ("FAILED", "insufficient_funds")


async def _lost_renewal(org: Org, fake: FakeToss, card: str, year: int) -> tuple[int, int, str]:
    """A subscription whose renewal's charge Toss took but billgraph never heard of (every
    try outlasted the timeout), its attempt PENDING: (subscription id, renewal id, the
    payment's key at Toss)."""
    customer = await org.customer(credit=9900, currency="KRW")
    method = await _billing_key(org, fake, customer, card)
    plan = await org.plan(9900, currency="KRW")
    created = await org.subscribe(
        customer, plan, method=method, provider=Provider.TOSS, now=at(year, 1, 1)
    )
    assert created.subscription.status == "ACTIVE"  # credit paid the first
    fake.stall_next(3, seconds=1.5, path="/v1/billing/")
    summary = await run.bill(org.database, org.providers, at(year, 2, 1))
    assert summary.unknown == 1
    renewal = (await org.invoices(created.subscription.id))[-1]
    [attempt] = await org.attempts(renewal.id)
    assert attempt.outcome == "PENDING"
    order_id = charges.reference(await org.providers.key_prefix(), renewal.id, 1)
    [payment_key] = [k for k, p in fake.payments.items() if p["orderId"] == order_id]
    return created.subscription.id, renewal.id, payment_key


async def _deliver(
    settings: Settings, database: Database, bodies: list[bytes]
) -> list[httpx.Response]:
    """POST /webhooks/toss with each body in turn, on a gateway configured for Toss."""
    transport = httpx.ASGITransport(app=create_app(settings, database))
    async with httpx.AsyncClient(transport=transport, base_url="http://billgraph.test") as client:
        return [
            await client.post(
                "/webhooks/toss", content=body, headers={"content-type": "application/json"}
            )
            for body in bodies
        ]


@pytest.mark.parametrize(
    ("card", "status", "outcome"),
    [(SUCCESS_CARD, "ACTIVE", "SUCCEEDED"), (INSUFFICIENT_CARD, "PAST_DUE", "FAILED")],
)
async def test_a_renewal_charge_whose_answer_was_lost_is_settled_by_the_webhook(
    toss_org: Org,
    toss_settings: Settings,
    fake_toss: FakeToss,  # noqa: F811
    card: str,
    status: str,
    outcome: str,
) -> None:
    org = toss_org
    subscription_id, renewal_id, payment_key = await _lost_renewal(org, fake_toss, card, 1987)
    charges_made = len(fake_toss.calls("POST", "/v1/billing/"))
    body = fake_toss.webhook(payment_key)
    deliveries = await _deliver(toss_settings, org.database, [body, body])
    assert [d.status_code for d in deliveries] == [200, 200], deliveries[0].text
    assert [d.json()["outcome"] for d in deliveries] == ["charge_settled", "duplicate"]
    [attempt] = await org.attempts(renewal_id)
    assert attempt.outcome == outcome
    if outcome == "SUCCEEDED":
        assert attempt.provider_charge_id == payment_key
    else:
        assert attempt.failure_code
    assert (await org.subscription(subscription_id)).status == status
    # The hour-later retry of an unknown outcome has nothing left to ask.
    await run.bill(org.database, org.providers, at(1987, 2, 1, 2))
    assert len(fake_toss.calls("POST", "/v1/billing/")) == charges_made
    await assert_ledger_invariant(org.database)


async def test_a_charge_webhook_that_is_not_the_charge_settles_nothing(
    toss_org: Org,
    toss_settings: Settings,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    """Toss's payment says another amount, or names an order another installation made: the
    attempt stays PENDING (refused, or acknowledged and ignored), until the true one comes."""
    org = toss_org
    subscription_id, renewal_id, payment_key = await _lost_renewal(
        org, fake_toss, SUCCESS_CARD, 1986
    )
    true_order = fake_toss.payments[payment_key]["orderId"]
    fake_toss.set_status(payment_key, "DONE", totalAmount=1)
    [wrong_amount] = await _deliver(toss_settings, org.database, [fake_toss.webhook(payment_key)])
    assert wrong_amount.status_code == 422 and "AMOUNT_MISMATCH" in wrong_amount.text
    # (Another state, so another event id: an event's id derives from the payment's state.)
    fake_toss.set_status(
        payment_key, "DONE", totalAmount=9900, balanceAmount=9899, orderId="billgraph-0-inv-1-1"
    )
    [foreign] = await _deliver(toss_settings, org.database, [fake_toss.webhook(payment_key)])
    assert (foreign.status_code, foreign.json()["outcome"]) == (200, "ignored")
    [attempt] = await org.attempts(renewal_id)
    assert attempt.outcome == "PENDING"

    fake_toss.set_status(payment_key, "DONE", balanceAmount=9900, orderId=true_order)
    [settled] = await _deliver(toss_settings, org.database, [fake_toss.webhook(payment_key)])
    assert settled.json()["outcome"] == "charge_settled", settled.text
    [attempt] = await org.attempts(renewal_id)
    assert (attempt.outcome, attempt.provider_charge_id) == ("SUCCEEDED", payment_key)
    assert (await org.subscription(subscription_id)).status == "ACTIVE"
    await assert_ledger_invariant(org.database)
