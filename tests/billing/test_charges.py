"""Charging saved payment methods through the adapters' provider-neutral charge()."""

import pytest

from billgraph.adapters.base import ChargeRequest
from billgraph.adapters.sandbox import SandboxProvider
from billgraph.adapters.stripe import StripeProvider
from billgraph.core.errors import ProviderError


def _request(card: str, key: str = "billgraph-x-invoice-1-attempt-1") -> ChargeRequest:
    return ChargeRequest(
        amount=700,
        currency="USD",
        reference="billgraph-x-inv-1-1",
        description="Invoice INV-000001",
        idempotency_key=key,
        payment_token=card,
    )


async def test_the_sandbox_charges_a_saved_test_card_once_per_key() -> None:
    sandbox = SandboxProvider("http://billgraph.test", "whsec_test")
    first = await sandbox.charge(_request("4242424242424242"))
    again = await sandbox.charge(_request("4242424242424242"))
    other = await sandbox.charge(
        _request("4242424242424242", key="billgraph-x-invoice-1-attempt-2")
    )
    assert first == again and first.provider_charge_id != other.provider_charge_id
    assert (first.amount, first.currency) == (700, "USD")
    assert "4242424242424242" not in repr(_request("4242424242424242"))


@pytest.mark.parametrize(
    ("card", "code"),
    [
        ("4000000000000341", "card_declined"),
        ("4000000000000002", "card_declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
        ("4000002500003155", "authentication_required"),
        ("4300000000000002", "insufficient_funds"),
    ],
)
async def test_the_sandbox_declines_as_its_test_cards_say(card: str, code: str) -> None:
    sandbox = SandboxProvider("http://billgraph.test", "whsec_test")
    with pytest.raises(ProviderError) as error:
        await sandbox.charge(_request(card))
    assert error.value.code == code


async def test_stripe_runs_its_own_billing_cycle() -> None:
    stripe = StripeProvider(
        secret_key="sk_test_x", webhook_secret="whsec_x", api_base="http://127.0.0.1:9", timeout=1
    )
    try:
        with pytest.raises(ProviderError) as error:
            await stripe.charge(_request("4242424242424242"))
        assert error.value.code == "unsupported"
    finally:
        await stripe.close()
