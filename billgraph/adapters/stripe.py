"""Stripe, through the official SDK's async client: customers, Checkout Sessions, refunds,
webhook events verified with the SDK, and the subscriptions Stripe runs (subscription-mode
sessions, fetching subscriptions and invoices, cancellation, the Customer Portal; their shapes
in stripe_billing.py).

Every POST carries the idempotency key the request derives (Stripe replays the first answer
for the same key and parameters), so the SDK's retries of a timeout or a 5xx, and our callers'
retries of a provider_unavailable, make one object at Stripe. Every Stripe error becomes a
core.errors.ProviderError with a provider-neutral code and Stripe's own in `decline_code`;
the secret key is never part of a message.
"""

from collections.abc import Awaitable, Mapping
from typing import Literal, TypeVar

import stripe

from billgraph.adapters.base import (
    ChargeRequest,
    ChargeResult,
    CustomerRequest,
    InvalidWebhook,
    Provider,
    ProviderRefund,
    ProviderSession,
    RefundRequest,
    SessionRequest,
    WebhookEvent,
)
from billgraph.adapters.stripe_billing import (
    WALLET_CREDIT_KEY,
    ProviderInvoice,
    ProviderSubscription,
    SubscriptionCheckoutRequest,
    read_invoice,
    read_subscription,
)
from billgraph.adapters.stripe_events import read_event
from billgraph.core.errors import ProviderError

T = TypeVar("T")

SIGNATURE_HEADER = "stripe-signature"
TOLERANCE_SECONDS = 300
MAX_NETWORK_RETRIES = 2
# Our session reference rides in the session's metadata (and comes back in its events).
REFERENCE_KEY = "billgraph_reference"
CUSTOMER_KEY = "billgraph_customer_id"
REFUND_REASON_KEY = "billgraph_reason"

REFUND_STATUSES = ("succeeded", "pending", "failed")
CARD_CODES = {
    "insufficient_funds": "insufficient_funds",
    "expired_card": "expired_card",
    "authentication_required": "authentication_required",
}


class StripeProvider:
    name = Provider.STRIPE

    def __init__(
        self, *, secret_key: str, webhook_secret: str, api_base: str, timeout: float
    ) -> None:
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self._http = stripe.HTTPXClient(timeout=timeout)
        self._client = stripe.StripeClient(
            secret_key,
            http_client=self._http,
            base_addresses={"api": self.api_base},
            max_network_retries=MAX_NETWORK_RETRIES,
        )

    def __repr__(self) -> str:  # never the keys
        return f"StripeProvider(api_base={self.api_base!r})"

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def ensure_customer(self, request: CustomerRequest) -> str | None:
        params: stripe.params.CustomerCreateParams = {"metadata": {CUSTOMER_KEY: request.reference}}
        if request.email:
            params["email"] = request.email
        if request.name:
            params["name"] = request.name
        customer = await self._call(
            self._client.v1.customers.create_async(
                params, {"idempotency_key": request.idempotency_key}
            )
        )
        return customer.id

    async def create_checkout_session(self, request: SessionRequest) -> ProviderSession:
        session = await self._call(
            self._client.v1.checkout.sessions.create_async(
                _session_params(request), {"idempotency_key": request.idempotency_key}
            )
        )
        if not session.url:
            raise ProviderError(
                "invalid_request", "Stripe opened a session without a hosted page.", "STRIPE"
            )
        return ProviderSession(provider_session_id=session.id, url=session.url)

    async def expire_checkout_session(self, provider_session_id: str) -> None:
        await self._call(self._client.v1.checkout.sessions.expire_async(provider_session_id))

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        params: stripe.params.RefundCreateParams = {
            "payment_intent": request.provider_payment_id,
            "amount": request.amount,
            "reason": "requested_by_customer",
        }
        if request.reason:
            params["metadata"] = {REFUND_REASON_KEY: request.reason[:500]}
        refund = await self._call(
            self._client.v1.refunds.create_async(
                params, {"idempotency_key": request.idempotency_key}
            )
        )
        # requires_action and canceled are Stripe's too: neither gave the money back (yet).
        status = refund.status if refund.status in REFUND_STATUSES else "pending"
        if refund.status == "canceled":
            status = "failed"
        return ProviderRefund(provider_refund_id=refund.id, status=status)

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        # Stripe runs its own billing cycle; billgraph mirrors it from webhooks.
        raise ProviderError(
            "unsupported",
            "Stripe bills its subscriptions itself: billgraph does not charge through it.",
            Provider.STRIPE.value,
        )

    async def create_subscription_checkout(
        self, request: SubscriptionCheckoutRequest
    ) -> ProviderSession:
        """A Checkout Session in subscription mode: Stripe collects the card, then starts
        the subscription (with `metadata` on the session and the subscription)."""
        session = await self._call(
            self._client.v1.checkout.sessions.create_async(
                _subscription_session_params(request),
                {"idempotency_key": request.idempotency_key},
            )
        )
        if not session.url:
            raise ProviderError(
                "invalid_request", "Stripe opened a session without a hosted page.", "STRIPE"
            )
        return ProviderSession(provider_session_id=session.id, url=session.url)

    async def retrieve_subscription(self, subscription_id: str) -> ProviderSubscription:
        found = await self._call(self._client.v1.subscriptions.retrieve_async(subscription_id))
        return read_subscription(found.to_dict())

    async def retrieve_invoice(self, invoice_id: str) -> ProviderInvoice:
        found = await self._call(self._client.v1.invoices.retrieve_async(invoice_id))
        return read_invoice(found.to_dict())

    async def cancel_subscription(self, subscription_id: str) -> ProviderSubscription:
        """Cancel now (no proration, no final invoice)."""
        done = await self._call(self._client.v1.subscriptions.cancel_async(subscription_id))
        return read_subscription(done.to_dict())

    async def set_cancel_at_period_end(
        self, subscription_id: str, cancel: bool
    ) -> ProviderSubscription:
        # Setting a flag is idempotent by itself (the SDK keys its own retries).
        done = await self._call(
            self._client.v1.subscriptions.update_async(
                subscription_id, {"cancel_at_period_end": cancel}
            )
        )
        return read_subscription(done.to_dict())

    async def add_wallet_credit(
        self,
        invoice: ProviderInvoice,
        amount: int,
        description: str,
        reference: str,
        idempotency_key: str,
    ) -> None:
        """Take `amount` off a draft invoice: a negative invoice item on it, marked as
        billgraph's wallet credit (`reference`: billgraph's invoice). Raises ProviderError
        (invalid_request: the invoice is no draft any more)."""
        if invoice.customer is None:
            raise ProviderError("invalid_request", "The invoice has no customer.", "STRIPE")
        await self._call(
            self._client.v1.invoice_items.create_async(
                {
                    "customer": invoice.customer,
                    "invoice": invoice.id,
                    "amount": -amount,
                    "currency": invoice.currency.lower(),
                    "description": description,
                    "metadata": {WALLET_CREDIT_KEY: reference},
                },
                {"idempotency_key": idempotency_key},
            )
        )

    async def create_portal_session(self, provider_customer_id: str, return_url: str) -> str:
        """A Customer Portal session's URL (short-lived: made on each request)."""
        portal = await self._call(
            self._client.v1.billing_portal.sessions.create_async(
                {"customer": provider_customer_id, "return_url": return_url}
            )
        )
        return portal.url

    async def parse_webhook(
        self, body: bytes, event: object, headers: Mapping[str, str], now: float
    ) -> WebhookEvent:
        header = headers.get(SIGNATURE_HEADER) or headers.get("Stripe-Signature")
        self._verify(body, header, now)
        return read_event(event, Provider.STRIPE)

    def _verify(self, body: bytes, header: str | None, now: float) -> None:
        """The SDK checks the signature on the raw bytes; the timestamp is checked here
        against `now`, both ways (the SDK would use its own clock, and only look back)."""
        if not header:
            raise InvalidWebhook("The Stripe-Signature header is missing.", "INVALID_SIGNATURE")
        try:
            stripe.WebhookSignature.verify_header(body, header, self.webhook_secret, None)
        except stripe.SignatureVerificationError:
            raise InvalidWebhook(
                "The Stripe-Signature does not match the body.", "INVALID_SIGNATURE"
            ) from None
        except UnicodeDecodeError:
            raise InvalidWebhook("The body is not UTF-8.", "BAD_REQUEST") from None
        if abs(now - _signed_at(header)) > TOLERANCE_SECONDS:
            raise InvalidWebhook(
                f"The signature is older than {TOLERANCE_SECONDS} s (or from the future).",
                "STALE_SIGNATURE",
            )

    async def _call(self, call: Awaitable[T]) -> T:
        """A Stripe call's answer; its StripeError as billgraph's ProviderError."""
        try:
            return await call
        except stripe.StripeError as exc:
            raise self._provider_error(exc) from None

    def _provider_error(self, exc: stripe.StripeError) -> ProviderError:
        code, decline_code, message = _classify(exc)
        # Stripe masks keys in its messages; this makes sure of it.
        message = message.replace(self.secret_key, "[redacted]")
        return ProviderError(code, message, Provider.STRIPE.value, decline_code)


def _session_params(request: SessionRequest) -> "stripe.params.checkout.SessionCreateParams":
    params: stripe.params.checkout.SessionCreateParams = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": request.currency.lower(),
                    "unit_amount": request.amount,
                    "product_data": {"name": request.description},
                },
                "quantity": 1,
            }
        ],
        "client_reference_id": request.customer_reference,
        "metadata": {**request.metadata, REFERENCE_KEY: request.reference},
        "success_url": request.success_url,
        "cancel_url": request.cancel_url,
        "expires_at": int(request.expires_at.timestamp()),
    }
    if request.provider_customer_id:
        params["customer"] = request.provider_customer_id
    return params


def _subscription_session_params(
    request: SubscriptionCheckoutRequest,
) -> "stripe.params.checkout.SessionCreateParams":
    interval: Literal["month", "year"] = "year" if request.interval == "year" else "month"
    subscription_data: stripe.params.checkout.SessionCreateParamsSubscriptionData = {
        "metadata": dict(request.metadata)
    }
    if request.trial_days > 0:
        subscription_data["trial_period_days"] = request.trial_days
    return {
        "mode": "subscription",
        "customer": request.provider_customer_id,
        "line_items": [
            {
                "price_data": {
                    "currency": request.currency.lower(),
                    "unit_amount": request.amount,
                    "product_data": {"name": request.description},
                    "recurring": {
                        "interval": interval,
                        "interval_count": request.interval_count,
                    },
                },
                "quantity": 1,
            }
        ],
        "metadata": dict(request.metadata),
        "subscription_data": subscription_data,
        "success_url": request.success_url,
        "cancel_url": request.cancel_url,
        "expires_at": int(request.expires_at.timestamp()),
    }


def _signed_at(header: str) -> int:
    """The `t=` of a header the SDK accepted (parsed as the SDK parses it)."""
    for item in header.split(","):
        parts = item.split("=", 2)
        if parts[0] == "t" and len(parts) > 1:
            return int(parts[1])
    raise InvalidWebhook("The Stripe-Signature header has no timestamp.", "INVALID_SIGNATURE")


def _error_detail(exc: stripe.StripeError, key: str) -> str | None:
    body = exc.json_body
    error = body.get("error") if isinstance(body, dict) else None
    value = error.get(key) if isinstance(error, dict) else None
    return value if isinstance(value, str) and value else None


def _classify(exc: stripe.StripeError) -> tuple[str, str | None, str]:
    """(provider-neutral code, Stripe's code, message) for a Stripe error."""
    stripe_code = exc.code or _error_detail(exc, "code")
    message = exc.user_message or "Stripe refused the request."
    if isinstance(exc, stripe.CardError):
        decline = _error_detail(exc, "decline_code")
        neutral = CARD_CODES.get(decline or "") or CARD_CODES.get(stripe_code or "")
        return neutral or "card_declined", decline or stripe_code, message
    if isinstance(exc, stripe.InvalidRequestError | stripe.IdempotencyError):
        return "invalid_request", stripe_code or _error_detail(exc, "type"), message
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return (
            "provider_not_configured",
            stripe_code,
            "Stripe refused the API key: check BILLGRAPH_STRIPE_SECRET_KEY.",
        )
    if isinstance(exc, stripe.APIConnectionError):
        message = "Stripe could not be reached in time: the outcome is unknown."
    elif isinstance(exc, stripe.RateLimitError):
        message = "Stripe is rate limiting this account: try again shortly."
    else:
        message = "Stripe failed to answer: the outcome is unknown."
    # Unknown outcome: the same call with the same idempotency key is safe to make again.
    return "provider_unavailable", stripe_code, message + " Retry with the same idempotency key."
