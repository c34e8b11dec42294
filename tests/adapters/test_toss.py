"""The Toss Payments adapter against the fake Toss API: what it sends (Basic auth with the secret
key, an Idempotency-Key derived from what it confirms), how it reads Toss's answers and errors,
what it retries (5xx, timeouts) and what it gives up on, webhooks verified by fetching the
payment, refunds, and billing keys that never reach a log or an exception text."""

import base64
import json
import logging
import re
import traceback
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog

from billgraph.adapters import toss
from billgraph.adapters.base import (
    CustomerRequest,
    EventKind,
    InvalidWebhook,
    Provider,
    RefundRequest,
    SessionRequest,
    WebhookEvent,
)
from billgraph.adapters.toss import TossProvider
from billgraph.core.errors import ProviderError
from tests.support.fake_toss import (  # noqa: F401 - fixtures
    CLIENT_KEY,
    INSUFFICIENT_CARD,
    LIMIT_CARD,
    SECRET_KEY,
    SUSPENDED_CARD,
    FakeToss,
    fake_toss,
    fake_toss_server,
)


def _adapter(toss_api: FakeToss, **options: Any) -> TossProvider:
    settings: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "client_key": CLIENT_KEY,
        "api_base": toss_api.url,
        "public_url": "http://billgraph.test/",
        "timeout": 2.0,
        "backoff_seconds": 0.01,
        **options,
    }
    return TossProvider(**settings)


@pytest.fixture
async def adapter(fake_toss: FakeToss) -> AsyncIterator[TossProvider]:  # noqa: F811
    made = _adapter(fake_toss)
    yield made
    await made.close()


def _order() -> str:
    return "bgtest_" + uuid.uuid4().hex


def _session_request(currency: str = "KRW", amount: int = 15000) -> SessionRequest:
    return SessionRequest(
        reference="1:key",
        customer_reference="1",
        provider_customer_id=str(uuid.uuid4()),
        description="Wallet top-up (KRW)",
        amount=amount,
        currency=currency,
        success_url="https://shop.example/paid",
        cancel_url="https://shop.example/cart",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        idempotency_key="billgraph-checkout-x",
    )


async def _paid(
    fake_toss: FakeToss,  # noqa: F811
    adapter: TossProvider,
    amount: int = 15000,
) -> tuple[str, str]:
    order_id = _order()
    key = fake_toss.start_payment(order_id, amount)
    await adapter.confirm(key, order_id, amount)
    return key, order_id


async def _webhook(adapter: TossProvider, body: bytes) -> WebhookEvent:
    return await adapter.parse_webhook(body, json.loads(body), {}, 0.0)


# --- sessions and customers -----------------------------------------------------------------


async def test_a_session_is_an_order_id_of_ours_on_billgraphs_page(adapter: TossProvider) -> None:
    first = await adapter.create_checkout_session(_session_request())
    second = await adapter.create_checkout_session(_session_request())
    assert first.provider_session_id != second.provider_session_id
    for session in (first, second):
        assert re.fullmatch(r"[A-Za-z0-9_-]{6,64}", session.provider_session_id)
        assert session.url == f"http://billgraph.test/checkout/toss/{session.provider_session_id}"
    customers = {
        await adapter.ensure_customer(CustomerRequest("1", "a@example.com", None, "k"))
        for _ in range(3)
    }
    assert len(customers) == 3
    assert all(c is not None and uuid.UUID(c).version == 4 for c in customers)


async def test_toss_takes_krw_only(adapter: TossProvider, fake_toss: FakeToss) -> None:  # noqa: F811
    before = len(fake_toss.calls())
    with pytest.raises(ProviderError) as refused:
        await adapter.create_checkout_session(_session_request("USD", 2000))
    assert (refused.value.code, refused.value.provider) == ("invalid_request", "TOSS")
    assert "KRW" in refused.value.message
    assert len(fake_toss.calls()) == before  # Toss was not asked


# --- confirm --------------------------------------------------------------------------------


async def test_confirm_sends_basic_auth_and_an_idempotency_key_and_answers_a_paid_event(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    order_id = _order()
    key = fake_toss.start_payment(order_id, 15000)
    event = await adapter.confirm(key, order_id, 15000)
    assert event == WebhookEvent(
        Provider.TOSS,
        f"{key}:DONE:15000",
        "PAYMENT_STATUS_CHANGED",
        EventKind.PAID,
        provider_session_id=order_id,
        amount=15000,
        currency="KRW",
        provider_payment_id=key,
    )
    (sent,) = [
        r for r in fake_toss.calls("POST", "/v1/payments/confirm") if r.body["paymentKey"] == key
    ]
    assert (
        sent.headers["authorization"]
        == "Basic " + base64.b64encode(f"{SECRET_KEY}:".encode()).decode()
    )
    assert sent.body == {"paymentKey": key, "orderId": order_id, "amount": 15000}
    idempotency_key = sent.headers["idempotency-key"]
    assert key not in idempotency_key and 0 < len(idempotency_key) <= 300
    # Again: the same key, Toss replays its first answer, the event is the same one.
    assert await adapter.confirm(key, order_id, 15000) == event
    assert fake_toss.calls("POST", "/v1/payments/confirm")[-1].headers["idempotency-key"] == (
        idempotency_key
    )
    assert fake_toss.payments[key]["status"] == "DONE"


async def test_a_wrong_secret_key_is_provider_not_configured_and_not_retried(
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    wrong = _adapter(fake_toss, secret_key="test_sk_not_ours")
    order_id = _order()
    key = fake_toss.start_payment(order_id, 1000)
    try:
        with pytest.raises(ProviderError) as refused:
            await wrong.confirm(key, order_id, 1000)
    finally:
        await wrong.close()
    assert refused.value.code == "provider_not_configured"
    assert refused.value.decline_code == "UNAUTHORIZED_KEY"
    assert "test_sk_not_ours" not in refused.value.message
    assert fake_toss.confirms(key) == 1
    assert fake_toss.payments[key]["status"] == "IN_PROGRESS"


@pytest.mark.parametrize(
    ("card", "code", "decline_code"),
    [
        (INSUFFICIENT_CARD, "insufficient_funds", "REJECT_CARD_PAYMENT"),
        (LIMIT_CARD, "card_declined", "EXCEED_MAX_AMOUNT"),
        (SUSPENDED_CARD, "card_declined", "INVALID_STOPPED_CARD"),
    ],
)
async def test_a_declined_card_is_mapped_and_the_payment_is_aborted(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
    card: str,
    code: str,
    decline_code: str,
) -> None:
    order_id = _order()
    key = fake_toss.start_payment(order_id, 5000, card=card)
    with pytest.raises(ProviderError) as refused:
        await adapter.confirm(key, order_id, 5000)
    assert (refused.value.code, refused.value.decline_code) == (code, decline_code)
    assert fake_toss.confirms(key) == 1  # a decline is an answer: not retried
    aborted = await adapter.fetch(key)
    assert aborted.status == "ABORTED" and aborted.failure is not None
    assert (aborted.failure.code, aborted.failure.decline_code) == (code, decline_code)


@pytest.mark.parametrize(
    ("status", "toss_code", "code"),
    [
        (400, "INVALID_CARD_EXPIRATION", "expired_card"),
        (403, "REJECT_CARD_COMPANY", "card_declined"),
        (403, "REJECT_ACCOUNT_PAYMENT", "insufficient_funds"),
        (400, "INVALID_CARD_LOST_OR_STOLEN", "card_declined"),
        (401, "UNAUTHORIZED_KEY", "provider_not_configured"),
        (400, "INVALID_API_KEY", "provider_not_configured"),
        (404, "NOT_FOUND_PAYMENT", "invalid_request"),
        (400, "ALREADY_CANCELED_PAYMENT", "invalid_request"),
        (400, "PROVIDER_ERROR", "provider_unavailable"),
        (400, "SOMETHING_NEW", "invalid_request"),
    ],
)
async def test_tosss_error_codes_map_to_neutral_codes_keeping_tosss_own(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
    status: int,
    toss_code: str,
    code: str,
) -> None:
    order_id = _order()
    key = fake_toss.start_payment(order_id, 3000)
    fake_toss.fail_next(path="/v1/payments/confirm", status=status, code=toss_code, message="no")
    with pytest.raises(ProviderError) as refused:
        await adapter.confirm(key, order_id, 3000)
    assert (refused.value.code, refused.value.decline_code) == (code, toss_code)
    assert refused.value.message == "no"


async def test_the_amount_and_order_are_tosss_to_check_too(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    order_id = _order()
    key = fake_toss.start_payment(order_id, 10000)
    for wrong_order, wrong_amount in ((order_id, 100), (_order(), 10000)):
        with pytest.raises(ProviderError) as refused:
            await adapter.confirm(key, wrong_order, wrong_amount)
        assert (refused.value.code, refused.value.decline_code) == (
            "invalid_request",
            "INVALID_REQUEST",
        )
    assert fake_toss.payments[key]["status"] == "IN_PROGRESS"
    with pytest.raises(ProviderError) as unknown:
        await adapter.confirm("tgen_unknown", order_id, 10000)
    assert unknown.value.decline_code == "NOT_FOUND_PAYMENT_SESSION"


async def test_a_payment_confirmed_under_another_key_is_read_back(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    """ALREADY_PROCESSED_PAYMENT (a confirm made elsewhere, or a key older than Toss keeps):
    the payment is fetched, and if it is this order's, its state is the answer."""
    order_id = _order()
    key = fake_toss.start_payment(order_id, 7000)
    other = _adapter(fake_toss)
    try:
        fake_toss.set_status(key, "DONE")
        event = await other.confirm(key, order_id, 7000)
    finally:
        await other.close()
    assert event.kind is EventKind.PAID and event.amount == 7000
    assert [r.method for r in fake_toss.calls(path=f"/v1/payments/{key}")] == ["GET"]
    with pytest.raises(ProviderError) as refused:
        await adapter.confirm(key, _order(), 7000)  # not this order's: refused as it came
    assert refused.value.decline_code == "ALREADY_PROCESSED_PAYMENT"


# --- retries --------------------------------------------------------------------------------


async def test_5xx_then_success_is_retried_with_the_same_idempotency_key(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    order_id = _order()
    key = fake_toss.start_payment(order_id, 12000)
    fake_toss.fail_next(2, path="/v1/payments/confirm")
    event = await adapter.confirm(key, order_id, 12000)
    assert event.kind is EventKind.PAID
    sent = [
        r for r in fake_toss.calls("POST", "/v1/payments/confirm") if r.body["paymentKey"] == key
    ]
    assert len(sent) == 3
    assert len({r.headers["idempotency-key"] for r in sent}) == 1


async def test_5xx_on_every_attempt_is_provider_unavailable_and_a_later_call_succeeds(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    order_id = _order()
    key = fake_toss.start_payment(order_id, 12000)
    fake_toss.fail_next(3, path="/v1/payments/confirm")
    with pytest.raises(ProviderError) as unavailable:
        await adapter.confirm(key, order_id, 12000)
    assert unavailable.value.code == "provider_unavailable"
    assert unavailable.value.decline_code == "FAILED_INTERNAL_SYSTEM_PROCESSING"
    assert fake_toss.confirms(key) == 3
    assert (await adapter.confirm(key, order_id, 12000)).kind is EventKind.PAID


async def test_a_timeout_is_provider_unavailable_and_asking_again_confirms_once(
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    impatient = _adapter(fake_toss, timeout=0.2)
    order_id = _order()
    key = fake_toss.start_payment(order_id, 8000)
    fake_toss.stall_next(3, seconds=0.6, path="/v1/payments/confirm")
    try:
        with pytest.raises(ProviderError) as unavailable:
            await impatient.confirm(key, order_id, 8000)
        assert unavailable.value.code == "provider_unavailable"
        assert unavailable.value.decline_code is None
        assert fake_toss.confirms(key) == 3
        # Toss confirmed it after all (the client had stopped listening); the same key
        # asks again and is answered with that one confirmation.
        event = await impatient.confirm(key, order_id, 8000)
    finally:
        await impatient.close()
    assert event.kind is EventKind.PAID and event.event_id == f"{key}:DONE:8000"
    transaction = fake_toss.payments[key]["lastTransactionKey"]
    assert (await _adapter(fake_toss).fetch(key)).last_transaction_key == transaction


async def test_a_dead_api_is_provider_unavailable(fake_toss: FakeToss) -> None:  # noqa: F811
    dead = _adapter(fake_toss, api_base="http://127.0.0.1:9")  # the discard port
    try:
        with pytest.raises(ProviderError) as unavailable:
            await dead.fetch("tgen_x")
    finally:
        await dead.close()
    assert unavailable.value.code == "provider_unavailable"


# --- webhooks -------------------------------------------------------------------------------


async def test_a_webhook_is_verified_by_fetching_the_payment(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    key, order_id = await _paid(fake_toss, adapter, 15000)
    event = await _webhook(adapter, fake_toss.webhook(key))
    assert event.kind is EventKind.PAID
    assert (event.provider_session_id, event.amount, event.currency) == (order_id, 15000, "KRW")
    # The same state as the confirm reported: the same event (one inbox row).
    assert event.event_id == f"{key}:DONE:15000"
    assert fake_toss.calls("GET", f"/v1/payments/{key}")


async def test_a_body_claiming_done_for_an_aborted_payment_reads_as_a_failed_attempt(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    order_id = _order()
    key = fake_toss.start_payment(order_id, 9000, card=INSUFFICIENT_CARD)
    with pytest.raises(ProviderError):
        await adapter.confirm(key, order_id, 9000)
    forged = fake_toss.webhook(key, status="DONE", failure=None, totalAmount=9000)
    event = await _webhook(adapter, forged)
    assert event.kind is EventKind.PAYMENT_FAILED and event.amount is None
    assert event.error is not None and event.error.decline_code == "REJECT_CARD_PAYMENT"
    assert event.event_id == f"{key}:ABORTED:9000"


async def test_unknown_payments_and_bodies_that_are_not_events_are_refused(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    unknown = json.dumps(
        {
            "eventType": "PAYMENT_STATUS_CHANGED",
            "data": {"paymentKey": "tgen_nobody", "status": "DONE"},
        }
    ).encode()
    with pytest.raises(InvalidWebhook) as refused:
        await _webhook(adapter, unknown)
    assert refused.value.code == "UNKNOWN_PAYMENT"
    bodies: list[object] = [
        [],
        {},
        {"eventType": 3},
        {"eventType": "PAYMENT_STATUS_CHANGED"},
        {"eventType": "PAYMENT_STATUS_CHANGED", "data": []},
        {"eventType": "PAYMENT_STATUS_CHANGED", "data": {"paymentKey": 12}},
        {"eventType": "PAYMENT_STATUS_CHANGED", "data": {"paymentKey": ""}},
        {"eventType": "PAYMENT_STATUS_CHANGED", "data": {"paymentKey": "k" * 201}},
    ]
    for body in bodies:
        with pytest.raises(InvalidWebhook) as bad:
            await adapter.parse_webhook(json.dumps(body).encode(), body, {}, 0.0)
        assert bad.value.code == "BAD_REQUEST", body


async def test_other_event_types_are_ignored_without_asking_toss(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    before = len(fake_toss.calls())
    body = json.dumps({"eventType": "DEPOSIT_CALLBACK", "data": {"paymentKey": "x"}}).encode()
    event = await _webhook(adapter, body)
    assert event.kind is EventKind.IGNORED and event.provider_session_id is None
    assert event.event_id == (await _webhook(adapter, body)).event_id  # a redelivery dedupes
    assert len(fake_toss.calls()) == before


async def test_cancels_expiry_and_pending_states_read_from_toss(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    key, _ = await _paid(fake_toss, adapter, 10000)
    fake_toss.dashboard_cancel(key, 3000)
    partial = await _webhook(adapter, fake_toss.webhook(key))
    assert (partial.kind, partial.refunded_total, partial.provider_payment_id) == (
        EventKind.REFUNDED,
        3000,
        key,
    )
    assert partial.currency == "KRW" and partial.event_id == f"{key}:PARTIAL_CANCELED:7000"
    fake_toss.dashboard_cancel(key)
    full = await _webhook(adapter, fake_toss.webhook(key))
    assert (full.kind, full.refunded_total) == (EventKind.REFUNDED, 10000)
    assert full.event_id != partial.event_id

    pending_order = _order()
    pending = fake_toss.start_payment(pending_order, 500)
    assert (await _webhook(adapter, fake_toss.webhook(pending))).kind is EventKind.IGNORED
    fake_toss.set_status(pending, "EXPIRED")
    expired = await _webhook(adapter, fake_toss.webhook(pending))
    assert expired.kind is EventKind.EXPIRED and expired.provider_session_id == pending_order


async def test_toss_down_while_verifying_is_provider_unavailable_not_a_refusal(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    key, _ = await _paid(fake_toss, adapter)
    fake_toss.fail_next(3, path="/v1/payments/")
    with pytest.raises(ProviderError) as unavailable:
        await _webhook(adapter, fake_toss.webhook(key))
    assert unavailable.value.code == "provider_unavailable"


# --- refunds --------------------------------------------------------------------------------


def _refund(key: str, amount: int, idempotency_key: str, currency: str = "KRW") -> RefundRequest:
    return RefundRequest(key, amount, currency, "Customer asked", idempotency_key)


async def test_refunds_cancel_part_then_all_once_per_idempotency_key(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    key, _ = await _paid(fake_toss, adapter, 20000)
    first = await adapter.refund(_refund(key, 5000, f"refund-{key}-1"))
    assert first.status == "succeeded"
    assert first.provider_refund_id == fake_toss.payments[key]["cancels"][0]["transactionKey"]
    assert await adapter.refund(_refund(key, 5000, f"refund-{key}-1")) == first  # a retry
    assert fake_toss.payments[key]["balanceAmount"] == 15000
    sent = fake_toss.calls("POST", f"/v1/payments/{key}/cancel")[0]
    assert sent.body == {"cancelReason": "Customer asked", "cancelAmount": 5000}
    assert sent.headers["idempotency-key"] == f"refund-{key}-1"
    rest = await adapter.refund(_refund(key, 15000, f"refund-{key}-2"))
    assert rest.status == "succeeded" and rest.provider_refund_id != first.provider_refund_id
    assert fake_toss.payments[key]["status"] == "CANCELED"
    with pytest.raises(ProviderError) as refused:
        await adapter.refund(_refund(key, 1, f"refund-{key}-3"))
    assert (refused.value.code, refused.value.decline_code) == (
        "invalid_request",
        "ALREADY_CANCELED_PAYMENT",
    )


async def test_a_refund_beyond_the_balance_or_in_another_currency_is_refused(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    key, _ = await _paid(fake_toss, adapter, 1000)
    with pytest.raises(ProviderError) as refused:
        await adapter.refund(_refund(key, 1001, f"refund-{key}-big"))
    assert refused.value.decline_code == "NOT_CANCELABLE_AMOUNT"
    with pytest.raises(ProviderError) as usd:
        await adapter.refund(_refund(key, 10, f"refund-{key}-usd", "USD"))
    assert usd.value.code == "invalid_request"
    assert fake_toss.payments[key]["balanceAmount"] == 1000


# --- billing keys ---------------------------------------------------------------------------


async def test_a_billing_key_is_issued_and_charged(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
) -> None:
    customer_key = str(uuid.uuid4())
    auth_key = fake_toss.authorize_billing(customer_key)
    issued = await adapter.issue_billing_key(auth_key, customer_key)
    assert issued.customer_key == customer_key and issued.card_number == "43000000****000*"
    assert issued.billing_key not in repr(issued) and customer_key not in repr(issued)
    assert "=" in issued.billing_key  # base64 padding: the charge's path must be escaped
    order_id = _order()
    charge = await adapter.charge_billing_key(
        issued.billing_key, customer_key, 9900, order_id, "Monthly plan", f"charge-{order_id}"
    )
    assert charge.paid and (charge.amount, charge.currency, charge.order_id) == (
        9900,
        "KRW",
        order_id,
    )
    again = await adapter.charge_billing_key(
        issued.billing_key, customer_key, 9900, order_id, "Monthly plan", f"charge-{order_id}"
    )
    assert again == charge  # the same idempotency key: charged once
    # A charge is not a checkout session: its events name none.
    event = await _webhook(adapter, fake_toss.webhook(charge.payment_key))
    assert event.kind is EventKind.PAID and event.provider_session_id is None
    with pytest.raises(ProviderError) as mismatch:
        await adapter.charge_billing_key(
            issued.billing_key, str(uuid.uuid4()), 9900, _order(), "Monthly plan", "other"
        )
    assert mismatch.value.decline_code == "NOT_MATCHES_CUSTOMER_KEY"


@pytest.mark.parametrize(
    ("card", "code", "decline_code"),
    [
        (INSUFFICIENT_CARD, "insufficient_funds", "REJECT_CARD_PAYMENT"),
        (LIMIT_CARD, "card_declined", "EXCEED_MAX_AMOUNT"),
        (SUSPENDED_CARD, "card_declined", "INVALID_STOPPED_CARD"),
    ],
)
async def test_billing_charges_decline_as_the_test_cards_say(
    adapter: TossProvider,
    fake_toss: FakeToss,  # noqa: F811
    card: str,
    code: str,
    decline_code: str,
) -> None:
    customer_key = str(uuid.uuid4())
    issued = await adapter.issue_billing_key(
        fake_toss.authorize_billing(customer_key, card), customer_key
    )
    with pytest.raises(ProviderError) as declined:
        await adapter.charge_billing_key(
            issued.billing_key, customer_key, 5000, _order(), "Monthly plan", str(uuid.uuid4())
        )
    assert (declined.value.code, declined.value.decline_code) == (code, decline_code)


def _texts(exc: BaseException) -> str:
    return "\n".join(
        [str(exc), repr(exc), getattr(exc, "message", ""), *traceback.format_exception(exc)]
    )


async def test_a_billing_key_reaches_no_log_and_no_exception_text(
    fake_toss: FakeToss,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    captured = structlog.testing.LogCapture()
    monkeypatch.setattr(toss, "log", structlog.wrap_logger(None, processors=[captured]))
    caplog.set_level(logging.DEBUG)  # httpx and httpcore say everything at DEBUG and INFO
    adapter = _adapter(fake_toss, timeout=0.2)
    customer_key = str(uuid.uuid4())
    texts: list[str] = []
    try:
        issued = await adapter.issue_billing_key(
            fake_toss.authorize_billing(customer_key, INSUFFICIENT_CARD), customer_key
        )
        secret = issued.billing_key

        async def charge() -> None:
            await adapter.charge_billing_key(
                secret, customer_key, 5000, _order(), "Plan", str(uuid.uuid4())
            )

        with pytest.raises(ProviderError) as declined:  # a decline
            await charge()
        texts.append(_texts(declined.value))
        fake_toss.fail_next(3, path="/v1/billing/")
        with pytest.raises(ProviderError) as failing:  # 5xx, retried, then given up
            await charge()
        texts.append(_texts(failing.value))
        fake_toss.stall_next(3, seconds=0.5, path="/v1/billing/")
        with pytest.raises(ProviderError) as slow:  # timeouts
            await charge()
        texts.append(_texts(slow.value))
    finally:
        await adapter.close()
    assert declined.value.code == "insufficient_funds"
    assert failing.value.code == slow.value.code == "provider_unavailable"
    assert len(fake_toss.calls("POST", "/v1/billing/")) >= 7  # the calls did happen
    assert any(e["event"] == "toss call failed" for e in captured.entries)
    assert "/v1/billing/[redacted]" in caplog.text  # httpx's request log, redacted
    everything = "\n".join([caplog.text, repr(captured.entries), repr(issued), *texts])
    for form in (secret, secret.rstrip("="), secret.replace("=", "%3D")):
        assert form not in everything
