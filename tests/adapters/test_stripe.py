"""The Stripe adapter against the fake Stripe server (tests/support/fake_stripe.py): what it
sends (asserted on what the fake received), what each Stripe error becomes, the SDK's retries
under the same idempotency key, and webhook verification and reading."""

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from billgraph.adapters.base import (
    CustomerRequest,
    EventKind,
    InvalidWebhook,
    Provider,
    RefundRequest,
    SessionRequest,
    WebhookEvent,
)
from billgraph.adapters.stripe import StripeProvider
from billgraph.core.errors import ProviderError
from tests.support.fake_stripe import FakeStripe, StoredEvent, running, signature

SECRET_KEY = "sk_test_adapter_" + "k" * 24
WEBHOOK_SECRET = "whsec_adapter_" + "w" * 24
_keys = iter(range(1, 1_000_000))


def key(name: str) -> str:
    """An idempotency key no other test uses (the fake is shared by the module)."""
    return f"{name}-{next(_keys)}-{time.time_ns()}"


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeStripe]:
    with running(SECRET_KEY, WEBHOOK_SECRET) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeStripe) -> Iterator[FakeStripe]:
    yield fake_server
    fake_server.clear_faults()  # a failed test leaves none for the next


def make_adapter(fake: FakeStripe, **overrides: Any) -> StripeProvider:
    options: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "webhook_secret": WEBHOOK_SECRET,
        "api_base": fake.url,
        "timeout": 5.0,
        **overrides,
    }
    return StripeProvider(**options)


@pytest.fixture
async def adapter(fake: FakeStripe) -> AsyncIterator[StripeProvider]:
    made = make_adapter(fake)
    yield made
    await made.close()


def customer_request(**fields: Any) -> CustomerRequest:
    values: dict[str, Any] = {
        "reference": "42",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "idempotency_key": key("customer"),
        **fields,
    }
    return CustomerRequest(**values)


def session_request(customer: str | None, **fields: Any) -> SessionRequest:
    values: dict[str, Any] = {
        "reference": "7:checkout-1",
        "customer_reference": "42",
        "provider_customer_id": customer,
        "description": "Wallet top-up (USD)",
        "amount": 2500,
        "currency": "USD",
        "success_url": "https://shop.example/paid?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/cart",
        "expires_at": datetime.now(UTC).replace(microsecond=0) + timedelta(hours=23),
        "idempotency_key": key("checkout"),
        "metadata": {"billgraph_organization_id": "7", "billgraph_customer_id": "42"},
        **fields,
    }
    return SessionRequest(**values)


async def paid_session(fake: FakeStripe, adapter: StripeProvider, amount: int = 2500) -> str:
    """A session the fake's customer paid; its payment intent."""
    opened = await adapter.create_checkout_session(session_request(None, amount=amount))
    return str(fake.pay(opened.provider_session_id)["id"])


# -- customers and sessions ---------------------------------------------------------------


async def test_a_customer_is_made_with_email_name_and_our_id(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    mark = fake.mark()
    request = customer_request()
    customer_id = await adapter.ensure_customer(request)
    assert customer_id is not None and customer_id.startswith("cus_")
    [sent] = fake.since(mark)
    assert (sent.method, sent.path, sent.status) == ("POST", "/v1/customers", 200)
    assert sent.params == {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "metadata": {"billgraph_customer_id": "42"},
    }
    assert sent.idempotency_key == request.idempotency_key
    assert sent.stripe_version  # the SDK pins its API version
    assert fake.customers[customer_id]["metadata"] == {"billgraph_customer_id": "42"}


async def test_a_customer_without_email_or_name_sends_neither(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    mark = fake.mark()
    await adapter.ensure_customer(customer_request(email=None, name=None))
    assert fake.since(mark)[0].params == {"metadata": {"billgraph_customer_id": "42"}}


async def test_a_session_is_opened_with_billgraphs_parameters(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    customer = await adapter.ensure_customer(customer_request())
    request = session_request(customer)
    mark = fake.mark()
    opened = await adapter.create_checkout_session(request)
    [sent] = fake.since(mark)
    assert (sent.path, sent.status, sent.idempotency_key) == (
        "/v1/checkout/sessions",
        200,
        request.idempotency_key,
    )
    assert sent.params == {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": "2500",
                    "product_data": {"name": "Wallet top-up (USD)"},
                },
                "quantity": "1",
            }
        ],
        "customer": customer,
        "client_reference_id": "42",
        "metadata": {
            "billgraph_organization_id": "7",
            "billgraph_customer_id": "42",
            "billgraph_reference": "7:checkout-1",
        },
        "success_url": "https://shop.example/paid?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/cart",
        "expires_at": str(int(request.expires_at.timestamp())),
    }
    assert opened.provider_session_id.startswith("cs_test_")
    session = fake.sessions[opened.provider_session_id]
    assert opened.url == session["url"] and opened.url.startswith(fake.url)
    assert (session["status"], session["payment_status"]) == ("open", "unpaid")
    assert (session["amount_total"], session["currency"]) == (2500, "usd")


async def test_a_session_without_a_stripe_customer_names_none(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    mark = fake.mark()
    await adapter.create_checkout_session(session_request(None))
    assert "customer" not in fake.since(mark)[0].params


async def test_a_retried_create_with_the_same_key_is_one_session_at_stripe(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    request = session_request(None)
    before, mark = len(fake.sessions), fake.mark()
    first = await adapter.create_checkout_session(request)
    again = await adapter.create_checkout_session(request)
    assert again == first
    assert len(fake.sessions) == before + 1
    assert [r.replayed for r in fake.since(mark)] == [False, True]


async def test_the_same_key_with_other_parameters_is_invalid_request(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    request = session_request(None)
    await adapter.create_checkout_session(request)
    with pytest.raises(ProviderError) as refused:
        await adapter.create_checkout_session(replace(request, amount=request.amount + 1))
    assert (refused.value.code, refused.value.decline_code) == (
        "invalid_request",
        "idempotency_error",
    )
    assert refused.value.provider == "STRIPE"


async def test_a_session_for_an_unknown_customer_is_invalid_request(
    adapter: StripeProvider,
) -> None:
    with pytest.raises(ProviderError) as refused:
        await adapter.create_checkout_session(session_request("cus_nobody"))
    assert (refused.value.code, refused.value.decline_code) == (
        "invalid_request",
        "resource_missing",
    )
    assert "cus_nobody" in refused.value.message


async def test_an_amount_beyond_stripes_limit_is_invalid_request(adapter: StripeProvider) -> None:
    with pytest.raises(ProviderError) as refused:
        await adapter.create_checkout_session(session_request(None, amount=100_000_000))
    assert refused.value.code == "invalid_request"


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code", "decline_code"),
    [
        (
            {"status": 402, "code": "card_declined", "decline_code": "insufficient_funds"},
            "insufficient_funds",
            "insufficient_funds",
        ),
        (
            {"status": 402, "code": "expired_card", "decline_code": "expired_card"},
            "expired_card",
            "expired_card",
        ),
        (
            {"status": 402, "code": "card_declined", "decline_code": "generic_decline"},
            "card_declined",
            "generic_decline",
        ),
        (
            {"status": 402, "code": "card_declined", "decline_code": "do_not_honor"},
            "card_declined",
            "do_not_honor",
        ),
        ({"status": 402, "code": "incorrect_cvc"}, "card_declined", "incorrect_cvc"),
        (
            {"status": 402, "code": "authentication_required"},
            "authentication_required",
            "authentication_required",
        ),
        (
            {"status": 402, "code": "card_declined", "decline_code": "authentication_required"},
            "authentication_required",
            "authentication_required",
        ),
        ({"status": 400, "code": "parameter_invalid_empty"}, "invalid_request", None),
        ({"status": 403}, "provider_not_configured", None),
        ({"status": 429}, "provider_unavailable", "rate_limit"),
    ],
)
async def test_each_stripe_error_is_a_provider_error(
    fake: FakeStripe,
    adapter: StripeProvider,
    fault: dict[str, Any],
    code: str,
    decline_code: str | None,
) -> None:
    fault = dict(fault)
    if fault["status"] == 400:
        fault.update(type_="invalid_request_error", message="A parameter is empty.")
    fake.fail_next(1, **fault)
    mark = fake.mark()
    with pytest.raises(ProviderError) as refused:
        await adapter.ensure_customer(customer_request())
    error = refused.value
    expected_decline = "parameter_invalid_empty" if fault["status"] == 400 else decline_code
    assert (error.code, error.decline_code, error.provider) == (code, expected_decline, "STRIPE")
    assert error.message and SECRET_KEY not in error.message
    assert len(fake.since(mark)) == 1  # none of these is retried


async def test_a_wrong_secret_key_is_provider_not_configured_and_never_shown(
    fake: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = "sk_test_not_the_fakes_key_0123456789"
    adapter = make_adapter(fake, secret_key=wrong_key)
    mark = fake.mark()
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderError) as refused:
        await adapter.ensure_customer(customer_request())
    await adapter.close()
    assert [r.status for r in fake.since(mark)] == [401]
    assert refused.value.code == "provider_not_configured"
    assert wrong_key not in refused.value.message and wrong_key not in str(refused.value)
    assert wrong_key not in caplog.text
    assert wrong_key not in repr(adapter) and SECRET_KEY not in repr(make_adapter(fake))


async def test_a_5xx_then_success_is_retried_by_the_sdk_with_the_same_key(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    fake.fail_next(2, status=500)
    request = customer_request()
    before, mark = len(fake.customers), fake.mark()
    customer_id = await adapter.ensure_customer(request)
    sent = fake.since(mark)
    assert [r.status for r in sent] == [500, 500, 200]
    assert {r.idempotency_key for r in sent} == {request.idempotency_key}
    assert customer_id in fake.customers and len(fake.customers) == before + 1


async def test_5xx_beyond_the_retries_is_provider_unavailable(
    fake: FakeStripe, adapter: StripeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_next(3, status=500)
    mark = fake.mark()
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderError) as refused:
        await adapter.create_checkout_session(session_request(None))
    assert [r.status for r in fake.since(mark)] == [500, 500, 500]
    assert refused.value.code == "provider_unavailable"
    assert SECRET_KEY not in caplog.text and SECRET_KEY not in refused.value.message


async def test_a_timeout_beyond_the_retries_is_provider_unavailable_and_safe_to_retry(
    fake: FakeStripe,
) -> None:
    adapter = make_adapter(fake, timeout=0.3)
    fake.stall_next(3, seconds=1.0)
    request = customer_request()
    before, mark = len(fake.customers), fake.mark()
    with pytest.raises(ProviderError) as refused:
        await adapter.ensure_customer(request)
    assert refused.value.code == "provider_unavailable"

    # The stalled requests still ran at Stripe once held: the outcome was unknown, and a
    # retry with the same key gets the customer they made, not a second one.
    async def all_three_arrived() -> None:
        while len(fake.since(mark)) < 3:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(all_three_arrived(), timeout=30)  # a hang guard, not a timing
    assert [r.replayed for r in fake.since(mark)] == [False, True, True]
    made = await adapter.ensure_customer(request)
    await adapter.close()
    assert len(fake.customers) == before + 1 and made in fake.customers


# -- refunds ------------------------------------------------------------------------------


async def test_a_refund_names_the_payment_intent_amount_and_reason(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    intent = await paid_session(fake, adapter)
    request = RefundRequest(intent, 700, "USD", "Customer asked twice", key("refund"))
    mark = fake.mark()
    refund = await adapter.refund(request)
    [sent] = fake.since(mark)
    assert sent.path == "/v1/refunds" and sent.idempotency_key == request.idempotency_key
    assert sent.params == {
        "payment_intent": intent,
        "amount": "700",
        "reason": "requested_by_customer",
        "metadata": {"billgraph_reason": "Customer asked twice"},
    }
    assert refund.provider_refund_id.startswith("re_") and refund.status == "succeeded"
    charge = fake.charges[fake.payment_intents[intent]["latest_charge"]]
    assert charge["amount_refunded"] == 700
    # Retried with its key, the refund is the same one.
    assert await adapter.refund(request) == refund
    assert charge["amount_refunded"] == 700


@pytest.mark.parametrize("status", ["pending", "failed"])
async def test_a_refund_status_is_stripes(
    fake: FakeStripe, adapter: StripeProvider, status: str
) -> None:
    intent = await paid_session(fake, adapter)
    fake.next_refund_status = status
    refund = await adapter.refund(RefundRequest(intent, 100, "USD", None, key("refund")))
    assert refund.status == status


async def test_refunding_more_than_is_left_is_invalid_request(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    intent = await paid_session(fake, adapter, 1000)
    await adapter.refund(RefundRequest(intent, 600, "USD", None, key("refund")))
    with pytest.raises(ProviderError) as refused:
        await adapter.refund(RefundRequest(intent, 600, "USD", None, key("refund")))
    assert (refused.value.code, refused.value.decline_code) == (
        "invalid_request",
        "amount_too_large",
    )
    with pytest.raises(ProviderError) as unknown:
        await adapter.refund(RefundRequest("pi_nothing", 1, "USD", None, key("refund")))
    assert unknown.value.decline_code == "resource_missing"


# -- webhooks -----------------------------------------------------------------------------


async def parse(
    adapter: StripeProvider,
    body: bytes,
    header: str | None,
    now: float | None = None,
    header_name: str = "stripe-signature",
) -> WebhookEvent:
    headers = {} if header is None else {header_name: header}
    return await adapter.parse_webhook(
        body, json.loads(body), headers, time.time() if now is None else now
    )


async def completed(fake: FakeStripe, adapter: StripeProvider) -> tuple[str, StoredEvent]:
    opened = await adapter.create_checkout_session(session_request(None))
    fake.pay(opened.provider_session_id)
    return opened.provider_session_id, fake.event(
        opened.provider_session_id, "checkout.session.completed"
    )


async def test_a_signed_event_is_verified_on_its_raw_bytes(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    _, event = await completed(fake, adapter)
    header = fake.sign(event.body)["stripe-signature"]
    assert (await parse(adapter, event.body, header)).kind is EventKind.PAID
    # However the HTTP layer spells the header.
    assert (await parse(adapter, event.body, header, header_name="Stripe-Signature")).event_id
    # Stripe signs a rolled secret's events with both: one matching v1 is enough.
    rolled = f"{header},v1={'0' * 64}"
    assert (await parse(adapter, event.body, rolled)).event_id == event.id


async def refused(adapter: StripeProvider, body: bytes, header: str | None, now: float) -> str:
    with pytest.raises(InvalidWebhook) as caught:
        await parse(adapter, body, header, now)
    return caught.value.code


async def test_forged_wrong_secret_stale_missing_and_reserialized_events_are_refused(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    _, event = await completed(fake, adapter)
    now = int(time.time())
    good = signature(WEBHOOK_SECRET, event.body, now)
    reserialized = json.dumps(json.loads(event.body), separators=(",", ":")).encode()
    other_secret = make_adapter(fake, webhook_secret="whsec_another_endpoint")
    assert await refused(adapter, event.body, None, now) == "INVALID_SIGNATURE"
    assert await refused(adapter, event.body, "", now) == "INVALID_SIGNATURE"
    assert await refused(adapter, event.body, "t=abc,v1=00", now) == "INVALID_SIGNATURE"
    assert await refused(adapter, event.body, f"t={now}", now) == "INVALID_SIGNATURE"
    forged = signature("whsec_guessed", event.body, now)
    assert await refused(adapter, event.body, forged, now) == "INVALID_SIGNATURE"
    assert await refused(other_secret, event.body, good, now) == "INVALID_SIGNATURE"
    assert await refused(adapter, reserialized, good, now) == "INVALID_SIGNATURE"
    altered = event.body.replace(b'"amount_total": 2500', b'"amount_total": 9999')
    assert altered != event.body
    assert await refused(adapter, altered, good, now) == "INVALID_SIGNATURE"
    v0_only = good.replace("v1=", "v0=")
    assert await refused(adapter, event.body, v0_only, now) == "INVALID_SIGNATURE"
    await other_secret.close()


@pytest.mark.parametrize("age", [-300, 0, 300])
async def test_within_300_seconds_either_way_an_event_is_taken(
    fake: FakeStripe, adapter: StripeProvider, age: int
) -> None:
    _, event = await completed(fake, adapter)
    now = int(time.time())
    header = signature(WEBHOOK_SECRET, event.body, now - age)
    assert (await parse(adapter, event.body, header, now)).kind is EventKind.PAID


@pytest.mark.parametrize("age", [301, 3600, -301])
async def test_older_than_300_seconds_or_from_the_future_is_stale(
    fake: FakeStripe, adapter: StripeProvider, age: int
) -> None:
    _, event = await completed(fake, adapter)
    now = int(time.time())
    header = signature(WEBHOOK_SECRET, event.body, now - age)
    assert await refused(adapter, event.body, header, now) == "STALE_SIGNATURE"


async def read(fake: FakeStripe, adapter: StripeProvider, event: StoredEvent) -> WebhookEvent:
    return await parse(adapter, event.body, fake.sign(event.body)["stripe-signature"])


async def test_a_paid_checkout_is_paid(fake: FakeStripe, adapter: StripeProvider) -> None:
    session_id, event = await completed(fake, adapter)
    parsed = await read(fake, adapter, event)
    assert parsed == WebhookEvent(
        Provider.STRIPE,
        event.id,
        "checkout.session.completed",
        EventKind.PAID,
        provider_session_id=session_id,
        amount=2500,
        currency="USD",
        provider_payment_id=fake.sessions[session_id]["payment_intent"],
    )
    assert parsed.provider_payment_id and parsed.provider_payment_id.startswith("pi_")


async def test_a_delayed_payment_is_ignored_when_completed_then_paid_or_failed(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    paid = (await adapter.create_checkout_session(session_request(None))).provider_session_id
    bounced = (await adapter.create_checkout_session(session_request(None))).provider_session_id
    for session_id in (paid, bounced):
        fake.pay_delayed(session_id)
        unpaid = await read(fake, adapter, fake.event(session_id, "checkout.session.completed"))
        assert unpaid.kind is EventKind.IGNORED
        assert fake.sessions[session_id]["payment_status"] == "unpaid"
    fake.settle_delayed(paid, succeed=True)
    fake.settle_delayed(bounced, succeed=False)
    succeeded = await read(
        fake, adapter, fake.event(paid, "checkout.session.async_payment_succeeded")
    )
    assert (succeeded.kind, succeeded.provider_session_id) == (EventKind.PAID, paid)
    assert (succeeded.amount, succeeded.currency) == (2500, "USD")
    assert succeeded.provider_payment_id == fake.sessions[paid]["payment_intent"]
    failed = await read(fake, adapter, fake.event(bounced, "checkout.session.async_payment_failed"))
    assert (failed.kind, failed.provider_session_id) == (EventKind.FAILED, bounced)
    assert failed.error is not None and failed.error.code == "payment_failed"
    assert failed.error.message


async def test_an_expired_session_is_expired(fake: FakeStripe, adapter: StripeProvider) -> None:
    session_id = (await adapter.create_checkout_session(session_request(None))).provider_session_id
    fake.expire(session_id)
    parsed = await read(fake, adapter, fake.event(session_id, "checkout.session.expired"))
    assert (parsed.kind, parsed.provider_session_id) == (EventKind.EXPIRED, session_id)


async def test_a_declined_card_leaves_the_session_open_and_sends_no_checkout_event(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    session_id = (await adapter.create_checkout_session(session_request(None))).provider_session_id
    for card, decline in (
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
    ):
        intent = fake.pay(session_id, card)
        assert intent["last_payment_error"]["decline_code"] == decline
    assert fake.sessions[session_id]["status"] == "open"
    assert fake.events_for(session_id) == []
    fake.pay(session_id)  # another card pays it
    assert [e.type for e in fake.events_for(session_id)] == ["checkout.session.completed"]


async def test_a_dashboard_refund_carries_the_cumulative_refunded_amount(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    intent = await paid_session(fake, adapter, 1000)
    fake.refund_from_dashboard(intent, 300)
    fake.refund_from_dashboard(intent, 500)
    events = fake.events_for(intent, "charge.refunded")
    parsed = [await read(fake, adapter, e) for e in events]
    assert [(p.kind, p.refunded_total) for p in parsed] == [
        (EventKind.REFUNDED, 300),
        (EventKind.REFUNDED, 800),
    ]
    assert {(p.provider_payment_id, p.currency) for p in parsed} == {(intent, "USD")}
    assert all(p.provider_session_id is None for p in parsed)


def signed(fake: FakeStripe, event: dict[str, Any]) -> tuple[bytes, str]:
    body = json.dumps(event, indent=2).encode()
    return body, fake.sign(body)["stripe-signature"]


async def test_other_event_types_are_acknowledged_and_ignored(
    fake: FakeStripe, adapter: StripeProvider
) -> None:
    for event_type in ("customer.created", "payment_intent.succeeded", "refund.created"):
        body, header = signed(
            fake,
            {"id": key("evt"), "object": "event", "type": event_type, "data": {"object": {}}},
        )
        parsed = await parse(adapter, body, header)
        assert (parsed.kind, parsed.event_type) == (EventKind.IGNORED, event_type)


@pytest.mark.parametrize(
    "event",
    [
        [],
        {"type": "checkout.session.completed"},
        {"id": "", "type": "checkout.session.completed"},
        {"id": "evt_1"},
        {"id": "evt_1", "type": "checkout.session.completed"},
        {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": []}},
        {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {"id": "cs_1"}}},
        {
            "id": "evt_1",
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "id": "cs_1",
                    "object": "checkout.session",
                    "payment_status": "paid",
                    "amount_total": "2500",
                    "currency": "usd",
                }
            },
        },
        {
            "id": "evt_1",
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "id": "cs_1",
                    "object": "checkout.session",
                    "payment_status": "paid",
                    "amount_total": 2500,
                    "currency": "dollars",
                }
            },
        },
        {
            "id": "evt_1",
            "type": "charge.refunded",
            "data": {"object": {"object": "charge", "amount_refunded": 1, "currency": "usd"}},
        },
        {
            "id": "evt_1",
            "type": "charge.refunded",
            "data": {
                "object": {
                    "object": "charge",
                    "payment_intent": "pi_1",
                    "amount_refunded": True,
                    "currency": "usd",
                }
            },
        },
    ],
)
async def test_a_signed_event_missing_what_an_event_has_is_bad_request(
    fake: FakeStripe, adapter: StripeProvider, event: Any
) -> None:
    body, header = signed(fake, event)
    with pytest.raises(InvalidWebhook) as refused_event:
        await parse(adapter, body, header)
    assert refused_event.value.code == "BAD_REQUEST"
