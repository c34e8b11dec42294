"""Toss Payments, over httpx.

A top-up is paid in Toss's payment widget on billgraph's own page (/checkout/toss/{orderId}):
the orderId is ours, and nothing is charged until the server confirms the payment
(`POST /v1/payments/confirm`) with the amount it stored. Toss's webhooks carry no signature,
so a webhook's body is only a hint: the payment it names is fetched with the secret key and
the event is built from what Toss says.

Every call carries HTTP Basic auth (the secret key, an empty password). Calls that are safe to
repeat (GETs, and POSTs with an Idempotency-Key, which Toss answers by replaying the first
response) are retried with a short exponential backoff on timeouts, connection errors and
5xx answers; after the last attempt the outcome is unknown: ProviderError
provider_unavailable. Billing keys are credentials: they appear in no log line, message or
exception text (the one URL that holds one is redacted from httpx's request log).
"""

import asyncio
import hashlib
import logging
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from billgraph.adapters.base import (
    ChargeRequest,
    ChargeResult,
    CustomerRequest,
    EventKind,
    InvalidWebhook,
    PaymentError,
    Provider,
    ProviderRefund,
    ProviderSession,
    RefundRequest,
    SessionRequest,
    WebhookEvent,
)
from billgraph.core.errors import ProviderError
from billgraph.logs import get_logger

log = get_logger("billgraph.adapters.toss")

TOSS = Provider.TOSS.value
CURRENCY = "KRW"  # Toss's card payments take won only
STATUS_CHANGED = "PAYMENT_STATUS_CHANGED"
ORDER_ID = re.compile(r"[A-Za-z0-9_-]{6,64}")
ORDER_PREFIX = "bg"
MAX_PAYMENT_KEY = 200
MAX_EVENT_ID = 255  # the inbox's column
MAX_CANCEL_REASON = 200
BILLING = "BILLING"  # Payment.type of a billing-key charge (not a checkout session)
REFUNDED_STATUSES = frozenset({"CANCELED", "PARTIAL_CANCELED"})

# Toss's codes, mapped to the provider-neutral ones (its reference/error-codes page).
INSUFFICIENT_FUNDS = frozenset({"REJECT_CARD_PAYMENT", "REJECT_ACCOUNT_PAYMENT"})
CARD_DECLINED = frozenset(
    {
        "REJECT_CARD_COMPANY",
        "EXCEED_MAX_AMOUNT",
        "INVALID_STOPPED_CARD",
        "INVALID_REJECT_CARD",
        "INVALID_CARD_LOST_OR_STOLEN",
        "INVALID_CARD_NUMBER",
        "INVALID_PASSWORD",
        "EXCEED_MAX_DAILY_PAYMENT_COUNT",
        "EXCEED_MAX_PAYMENT_AMOUNT",
        "EXCEED_MAX_ONE_DAY_AMOUNT",
        "EXCEED_MAX_AUTH_COUNT",
        "CARD_PROCESSING_ERROR",
        "FDS_ERROR",
        "PAY_PROCESS_ABORTED",
    }
)
EXPIRED_CARD = frozenset({"INVALID_CARD_EXPIRATION"})
NOT_CONFIGURED = frozenset({"UNAUTHORIZED_KEY", "INVALID_API_KEY"})
TEMPORARY = frozenset({"PROVIDER_ERROR"})  # a 400 that means "try again in a few minutes"
# The same idempotency key is still being processed: asking again shortly is the answer.
IN_PROGRESS = frozenset({"IDEMPOTENT_REQUEST_PROCESSING", "ALREADY_PROCESSING_REQUEST"})


def neutral_code(toss_code: str | None, status: int = 400) -> str:
    """The provider-neutral code of Toss's error `toss_code` (answered with HTTP `status`)."""
    code = toss_code or ""
    if code in INSUFFICIENT_FUNDS:
        return "insufficient_funds"
    if code in EXPIRED_CARD:
        return "expired_card"
    if code in CARD_DECLINED or code.startswith("REJECT_"):
        return "card_declined"
    if code in NOT_CONFIGURED or status == 401:
        return "provider_not_configured"
    if code in TEMPORARY or status >= 500:
        return "provider_unavailable"
    return "invalid_request"


def payment_error(toss_code: str | None, message: str | None, status: int = 400) -> PaymentError:
    """Toss's error as a PaymentError: the neutral code, Toss's message, Toss's code."""
    text = (message or "Toss Payments refused the payment.")[:500]
    return PaymentError(neutral_code(toss_code, status), text, toss_code or None)


def _provider_error(status: int, toss_code: str | None, message: str | None) -> ProviderError:
    error = payment_error(toss_code, message, status)
    return ProviderError(error.code, error.message, TOSS, error.decline_code)


def _unavailable(toss_code: str | None = None) -> ProviderError:
    return ProviderError(
        "provider_unavailable",
        "Toss Payments did not answer in time; the same request can safely be made again.",
        TOSS,
        toss_code,
    )


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class TossPayment:
    """What billgraph reads of Toss's Payment object."""

    payment_key: str
    order_id: str
    status: str
    total_amount: int
    balance_amount: int
    currency: str
    type: str
    failure: PaymentError | None = None
    last_transaction_key: str | None = None
    cancel_transaction_keys: tuple[str, ...] = ()
    approved_at: str | None = None


@dataclass(frozen=True)
class BillingKey:
    """A card registered for auto-pay. `billing_key` is a credential: encrypt it at rest (see
    core.secrets.Vault); it is left out of repr() so a log of this object cannot leak it."""

    billing_key: str = field(repr=False)
    customer_key: str = field(repr=False)
    method: str | None = None
    card_number: str | None = None  # masked, as Toss shows it
    card_issuer_code: str | None = None
    authenticated_at: str | None = None


@dataclass(frozen=True)
class BillingCharge:
    """The outcome of charging a billing key (a refusal raises ProviderError instead)."""

    payment_key: str
    order_id: str
    status: str
    amount: int
    currency: str
    approved_at: str | None

    @property
    def paid(self) -> bool:
        return self.status == "DONE"


class _RedactBillingKeys(logging.Filter):
    """httpx logs every request's URL at INFO; a charge's URL holds the billing key."""

    PATTERN = re.compile(r"/v1/billing/(?!authorizations/)[^/?\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.PATTERN.sub("/v1/billing/[redacted]", str(arg))
                if "/v1/billing/" in str(arg)
                else arg
                for arg in record.args
            )
        return True


def _redact_httpx_log() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactBillingKeys) for f in logger.filters):
        logger.addFilter(_RedactBillingKeys())


class TossProvider:
    name = Provider.TOSS

    def __init__(
        self,
        *,
        secret_key: str,
        client_key: str,
        api_base: str,
        public_url: str,
        timeout: float,
        attempts: int = 3,
        backoff_seconds: float = 0.2,
    ):
        self.client_key = client_key  # the widget's: it is public
        self.public_url = public_url.rstrip("/")
        self.api_base = api_base
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff_seconds = backoff_seconds
        _redact_httpx_log()
        self._client = httpx.AsyncClient(
            base_url=api_base,
            auth=httpx.BasicAuth(secret_key, ""),
            timeout=timeout,
            headers={"accept": "application/json", "accept-language": "en-US"},
        )

    def __repr__(self) -> str:
        return f"TossProvider(api_base={self.api_base!r})"

    async def close(self) -> None:
        await self._client.aclose()

    # --- checkout -------------------------------------------------------------------------

    async def ensure_customer(self, request: CustomerRequest) -> str | None:
        """Toss keeps no customers: the customerKey is ours, a random UUID (never an email
        or an id someone could guess)."""
        return str(uuid.uuid4())

    async def create_checkout_session(self, request: SessionRequest) -> ProviderSession:
        """No call to Toss: the session is an orderId of ours, paid on billgraph's page."""
        if request.currency != CURRENCY:
            raise ProviderError(
                "invalid_request",
                f"Toss Payments takes {CURRENCY} only, not {request.currency}.",
                TOSS,
            )
        order_id = ORDER_PREFIX + secrets.token_urlsafe(24)  # 34 of [A-Za-z0-9_-]
        return ProviderSession(
            provider_session_id=order_id, url=f"{self.public_url}/checkout/toss/{order_id}"
        )

    async def open_billing_authorization(self, request: SessionRequest) -> ProviderSession:
        """No call to Toss: a card registration (requestBillingAuth) on billgraph's page, under
        a customerKey of its own (a random UUID, unguessable), which the success redirect
        carries back and the billing key is issued for."""
        if request.currency != CURRENCY:
            raise ProviderError(
                "invalid_request",
                f"Toss Payments takes {CURRENCY} only, not {request.currency}.",
                TOSS,
            )
        customer_key = str(uuid.uuid4())
        return ProviderSession(
            provider_session_id=customer_key,
            url=f"{self.public_url}/checkout/toss/{customer_key}",
        )

    async def confirm(self, payment_key: str, order_id: str, amount: int) -> WebhookEvent:
        """Confirm the payment the widget started (nothing is charged before). Its
        Idempotency-Key derives from the paymentKey, so a retry, a reload of the success page
        or a racing request confirm once. Raises ProviderError."""
        try:
            body = await self._call(
                "POST",
                "/v1/payments/confirm",
                "payments.confirm",
                json={"paymentKey": payment_key, "orderId": order_id, "amount": amount},
                idempotency_key="billgraph-confirm-" + _digest(payment_key),
            )
        except ProviderError as exc:
            if exc.decline_code != "ALREADY_PROCESSED_PAYMENT":
                raise
            # Confirmed before under another key (Toss keeps keys 15 days): what is it now?
            payment = await self.fetch(payment_key)
            if payment.order_id != order_id:
                raise
            return payment_event(payment)
        return payment_event(_payment(body))

    async def fetch(self, payment_key: str) -> TossPayment:
        """The payment as Toss has it now. Raises ProviderError (NOT_FOUND_PAYMENT is
        invalid_request)."""
        body = await self._call("GET", f"/v1/payments/{_segment(payment_key)}", "payments.get")
        return _payment(body)

    async def expire_checkout_session(self, provider_session_id: str) -> None:
        # Toss holds no session before the widget pays: billgraph's page and its success
        # redirect refuse a session that is not OPEN, so nothing is confirmed (charged).
        return None

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        if request.currency != CURRENCY:
            raise ProviderError("invalid_request", f"Toss Payments refunds {CURRENCY} only.", TOSS)
        reason = (request.reason or "Refund requested").strip()[:MAX_CANCEL_REASON]
        body = await self._call(
            "POST",
            f"/v1/payments/{_segment(request.provider_payment_id)}/cancel",
            "payments.cancel",
            json={"cancelReason": reason or "Refund requested", "cancelAmount": request.amount},
            idempotency_key=request.idempotency_key,
        )
        payment = _payment(body)
        refund_id = (
            payment.cancel_transaction_keys[-1]
            if payment.cancel_transaction_keys
            else payment.last_transaction_key or "cancel_" + _digest(request.idempotency_key)[:32]
        )
        status = "succeeded" if payment.status in REFUNDED_STATUSES else "pending"
        return ProviderRefund(provider_refund_id=refund_id, status=status)

    # --- webhooks -------------------------------------------------------------------------

    async def parse_webhook(
        self, body: bytes, event: object, headers: Mapping[str, str], now: float
    ) -> WebhookEvent:
        """The body only names the payment: its state is fetched from Toss. Raises
        InvalidWebhook (not an event, or a payment Toss does not know), ProviderError
        (Toss could not be asked: the delivery should be retried)."""
        if not isinstance(event, dict):
            raise InvalidWebhook("A Toss webhook is a JSON object.", "BAD_REQUEST")
        event_type = event.get("eventType")
        if not isinstance(event_type, str) or not 0 < len(event_type) <= 100:
            raise InvalidWebhook("The webhook has no eventType.", "BAD_REQUEST")
        if event_type != STATUS_CHANGED:
            return WebhookEvent(
                Provider.TOSS,
                f"{event_type}:{_digest(body.decode('utf-8', 'replace'))[:48]}",
                event_type,
                EventKind.IGNORED,
            )
        data = event.get("data")
        payment_key = data.get("paymentKey") if isinstance(data, dict) else None
        if not isinstance(payment_key, str) or not 0 < len(payment_key) <= MAX_PAYMENT_KEY:
            raise InvalidWebhook("The webhook has no data.paymentKey.", "BAD_REQUEST")
        try:
            payment = await self.fetch(payment_key)
        except ProviderError as exc:
            if exc.code != "invalid_request":
                raise  # Toss is down or our key is wrong: not the sender's fault
            raise InvalidWebhook("Toss Payments has no such payment.", "UNKNOWN_PAYMENT") from None
        if payment.payment_key != payment_key:
            raise InvalidWebhook("Toss Payments has no such payment.", "UNKNOWN_PAYMENT")
        return payment_event(payment)

    # --- billing keys (auto-pay) ----------------------------------------------------------

    async def issue_billing_key(self, auth_key: str, customer_key: str) -> BillingKey:
        """Exchange the authKey of the widget's card registration for a billing key."""
        body = await self._call(
            "POST",
            "/v1/billing/authorizations/issue",
            "billing.issue",
            json={"authKey": auth_key, "customerKey": customer_key},
            idempotency_key="billgraph-billing-issue-" + _digest(auth_key),
        )
        billing_key, returned_customer = body.get("billingKey"), body.get("customerKey")
        if not isinstance(billing_key, str) or not billing_key:
            raise _unavailable()
        card = body.get("card")
        card = card if isinstance(card, dict) else {}
        return BillingKey(
            billing_key=billing_key,
            customer_key=returned_customer if isinstance(returned_customer, str) else customer_key,
            method=_text(body.get("method")),
            card_number=_text(card.get("number")) or _text(body.get("cardNumber")),
            card_issuer_code=_text(card.get("issuerCode")),
            authenticated_at=_text(body.get("authenticatedAt")),
        )

    async def charge_billing_key(
        self,
        billing_key: str,
        customer_key: str,
        amount: int,
        order_id: str,
        order_name: str,
        idempotency_key: str,
    ) -> BillingCharge:
        """Charge a registered card. Raises ProviderError (a decline: card_declined,
        insufficient_funds, ...; provider_unavailable: ask again with the same key)."""
        if not ORDER_ID.fullmatch(order_id):
            raise ProviderError(
                "invalid_request", "An orderId is 6 to 64 of A-Z a-z 0-9 - _.", TOSS
            )
        body = await self._call(
            "POST",
            f"/v1/billing/{_segment(billing_key)}",
            "billing.charge",
            json={
                "customerKey": customer_key,
                "amount": amount,
                "orderId": order_id,
                "orderName": order_name[:100],
            },
            idempotency_key=idempotency_key,
        )
        payment = _payment(body)
        return BillingCharge(
            payment_key=payment.payment_key,
            order_id=payment.order_id,
            status=payment.status,
            amount=payment.total_amount,
            currency=payment.currency,
            approved_at=payment.approved_at,
        )

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge the billing key `request.payment_token` (issued for `customer_key`)."""
        if request.currency != CURRENCY:
            raise ProviderError("invalid_request", f"Toss Payments charges {CURRENCY} only.", TOSS)
        if not request.customer_key:
            raise ProviderError(
                "invalid_request", "A billing key charge names its customerKey.", TOSS
            )
        charged = await self.charge_billing_key(
            request.payment_token,
            request.customer_key,
            request.amount,
            request.reference,
            request.description,
            request.idempotency_key,
        )
        if not charged.paid:
            raise ProviderError(
                "card_declined", "Toss Payments did not approve the charge.", TOSS, charged.status
            )
        return ChargeResult(
            provider_charge_id=charged.payment_key, amount=charged.amount, currency=charged.currency
        )

    # --- the wire -------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        json: Mapping[str, object] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """One call, retried when repeating it is safe. `operation` names it in logs (the
        path may hold a billing key)."""
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        repeatable = method == "GET" or idempotency_key is not None
        last_code: str | None = None
        for attempt in range(self.attempts if repeatable else 1):
            if attempt:
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                response = await self._client.request(method, path, json=json, headers=headers)
            except httpx.TransportError as exc:  # timeouts, refused or dropped connections
                log.warning(
                    "toss call failed",
                    operation=operation,
                    attempt=attempt + 1,
                    error=type(exc).__name__,
                )
                continue
            body = _json(response)
            code, message = _error_fields(body)
            if response.is_success and body is not None:
                return body
            if (
                response.status_code >= 500
                or response.status_code == 429
                or code in IN_PROGRESS
                or body is None
            ):
                last_code = code
                log.warning(
                    "toss call failed",
                    operation=operation,
                    attempt=attempt + 1,
                    status=response.status_code,
                    code=code,
                )
                continue
            raise _provider_error(response.status_code, code, message)
        raise _unavailable(last_code)


def _segment(value: str) -> str:
    """A path segment, escaped whole (a billing key may hold '/', '+' or '=')."""
    return quote(value, safe="")


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _error_fields(body: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    if body is None:
        return None, None
    code, message = body.get("code"), body.get("message")
    return (
        code if isinstance(code, str) and code else None,
        message if isinstance(message, str) else None,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _amount(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _payment(body: Mapping[str, Any]) -> TossPayment:
    """Toss's Payment object; one billgraph cannot read means the outcome is unknown."""
    payment_key, order_id, status = body.get("paymentKey"), body.get("orderId"), body.get("status")
    total, balance = _amount(body.get("totalAmount")), _amount(body.get("balanceAmount"))
    if not (
        isinstance(payment_key, str)
        and payment_key
        and isinstance(order_id, str)
        and isinstance(status, str)
        and total is not None
    ):
        log.error("toss answered with an unreadable payment")
        raise _unavailable()
    failure = body.get("failure")
    cancels = body.get("cancels")
    return TossPayment(
        payment_key=payment_key,
        order_id=order_id,
        status=status,
        total_amount=total,
        balance_amount=total if balance is None else balance,
        currency=(_text(body.get("currency")) or CURRENCY).upper(),
        type=_text(body.get("type")) or "NORMAL",
        failure=(
            payment_error(_text(failure.get("code")), _text(failure.get("message")))
            if isinstance(failure, dict)
            else None
        ),
        last_transaction_key=_text(body.get("lastTransactionKey")),
        cancel_transaction_keys=tuple(
            key
            for cancel in (cancels if isinstance(cancels, list) else [])
            if isinstance(cancel, dict) and (key := _text(cancel.get("transactionKey")))
        ),
        approved_at=_text(body.get("approvedAt")),
    )


def payment_event(payment: TossPayment) -> WebhookEvent:
    """What Toss's state of a payment means for its checkout session. The event id derives
    from that state, so the same state reported twice (a confirm and a webhook, a webhook
    delivered twice) is one inbox row. A billing-key charge names no checkout session: its
    orderId (billgraph's reference of an invoice's attempt) is `provider_invoice_id`."""
    event_id = f"{payment.payment_key}:{payment.status}:{payment.balance_amount}"
    if len(event_id) > MAX_EVENT_ID:
        event_id = "sha256:" + _digest(event_id)
    billing = payment.type == BILLING  # a billing-key charge: its orderId names an invoice's
    common: dict[str, Any] = {
        "provider_session_id": None if billing else payment.order_id,
        "provider_invoice_id": payment.order_id if billing else None,
        "currency": payment.currency,
        "provider_payment_id": payment.payment_key,
    }
    kind = EventKind.IGNORED
    if payment.status == "DONE":
        kind = EventKind.PAID
        common["amount"] = payment.total_amount
    elif payment.status in REFUNDED_STATUSES:
        kind = EventKind.REFUNDED
        common["refunded_total"] = payment.total_amount - payment.balance_amount
    elif payment.status == "ABORTED":
        # This attempt was refused; the order is not spent (Toss refuses only an orderId
        # already approved or canceled), so the session stays payable, as after a declined
        # confirm on the success redirect.
        kind = EventKind.PAYMENT_FAILED
        common["error"] = payment.failure or PaymentError(
            "card_declined", "Toss Payments aborted the payment.", None
        )
    elif payment.status == "EXPIRED":
        kind = EventKind.EXPIRED
    return WebhookEvent(Provider.TOSS, event_id, STATUS_CHANGED, kind, **common)
