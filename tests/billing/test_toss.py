"""Subscriptions billed to Toss billing keys, against the fake Toss API: the key stored
encrypted, renewals charged to it, a declined renewal to dunning."""

import uuid
from collections.abc import AsyncIterator

import pytest

from billgraph.adapters.base import Provider
from billgraph.billing import payment_methods, run
from billgraph.checkout.providers import Providers
from billgraph.core.secrets import Vault
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database
from billgraph.settings import Settings
from tests.billing.helpers import Org, at, new_org
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
async def toss_org(
    database: Database,
    settings: Settings,
    fake_toss: FakeToss,  # noqa: F811
) -> AsyncIterator[Org]:
    configured = settings.model_copy(
        update={
            "toss_secret_key": SECRET_KEY,
            "toss_client_key": CLIENT_KEY,
            "toss_api_base": fake_toss.url,
            "encryption_key": ENCRYPTION_KEY,
        }
    )
    providers = Providers(database, configured)
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
    charges = fake_toss.calls("POST", "/v1/billing/")
    before = len(charges)
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
