"""Checkout helpers for tests: create sessions over GraphQL, and sign sandbox events exactly
as the sandbox signs them (Billgraph-Signature: t=<unix>,v1=<HMAC-SHA256 of "t.body">)."""

import hashlib
import hmac
import itertools
import json
import time
from typing import Any

import httpx

from billgraph.adapters import sandbox
from billgraph.checkout.providers import Providers
from billgraph.db.engine import Database
from billgraph.settings import Settings
from tests.support.graph import Tenant

_counter = itertools.count(1)

SESSION_FIELDS = """
  id provider mode status amount currency url successUrl cancelUrl providerSessionId
  expiresAt createdAt completedAt lastPaymentError { code message }
  ledgerEntry { id amount entryType currency }
  refunds { id amount walletDebited shortfall status source reason createdAt }
  customer { id }
"""

CREATE_SESSION = f"""
mutation($input: CreateCheckoutSessionInput!) {{
  createCheckoutSession(input: $input) {{
    __typename
    ... on CreateCheckoutSessionSuccess {{ replayed checkoutSession {{ {SESSION_FIELDS} }} }}
    ... on ProviderError {{ code message provider declineCode }}
    ... on IdempotencyConflictError {{ code message idempotencyKey }}
    ... on ValidationError {{ code message field }}
    ... on NotFoundError {{ code message }}
  }}
}}
"""

EXPIRE_SESSION = f"""
mutation($id: ID!) {{
  expireCheckoutSession(id: $id) {{
    __typename
    ... on ExpireCheckoutSessionSuccess {{ checkoutSession {{ {SESSION_FIELDS} }} }}
    ... on UserError {{ code message }}
  }}
}}
"""

SESSION = f"""
query($id: ID!) {{ node(id: $id) {{ __typename ... on CheckoutSession {{ {SESSION_FIELDS} }} }} }}
"""

SESSIONS = """
query($id: ID!, $first: Int, $after: String, $status: CheckoutStatus) {
  customer(id: $id) {
    checkoutSessions(first: $first, after: $after, status: $status) {
      edges { cursor node { id status amount } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


def session_input(customer_id: str, amount: int = 2000, **fields: Any) -> dict[str, Any]:
    return {
        "input": {
            "customerId": customer_id,
            "amount": amount,
            "currency": "USD",
            "successUrl": "https://shop.example/paid?session={CHECKOUT_SESSION_ID}",
            "cancelUrl": "https://shop.example/cart",
            "idempotencyKey": f"checkout-{next(_counter)}",
            **fields,
        }
    }


async def create_session(
    tenant: Tenant, customer_id: str, amount: int = 2000, **fields: Any
) -> dict[str, Any]:
    """A new sandbox session; returns the CheckoutSession as a dict."""
    body = await tenant.data(CREATE_SESSION, session_input(customer_id, amount, **fields))
    result = body["createCheckoutSession"]
    assert result["__typename"] == "CreateCheckoutSessionSuccess", result
    return result["checkoutSession"]  # type: ignore[no-any-return]


async def session_of(tenant: Tenant, session_id: str) -> dict[str, Any]:
    node = (await tenant.data(SESSION, {"id": session_id}))["node"]
    assert node is not None and node.pop("__typename") == "CheckoutSession", node
    return node  # type: ignore[no-any-return]


async def sessions_of(tenant: Tenant, customer_id: str) -> list[dict[str, Any]]:
    data = await tenant.data(SESSIONS, {"id": customer_id, "first": 100})
    return [e["node"] for e in data["customer"]["checkoutSessions"]["edges"]]


async def sandbox_secret(database: Database, settings: Settings) -> str:
    """The secret the gateway signs and verifies sandbox events with (stored on first use)."""
    return (await Providers(database, settings).sandbox()).webhook_secret


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def completed_event(
    provider_session_id: str,
    amount: int,
    currency: str = "usd",
    event_id: str | None = None,
    payment_status: str = "paid",
    payment_intent: str | None = None,
) -> bytes:
    """A checkout.session.completed event as Stripe shapes it (the payment's id as the
    sandbox names it unless given)."""
    event = {
        "id": event_id or f"evt_test_{next(_counter)}_{time.time_ns()}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "livemode": False,
        "data": {
            "object": {
                "id": provider_session_id,
                "object": "checkout.session",
                "amount_total": amount,
                "currency": currency,
                "payment_status": payment_status,
                "payment_intent": payment_intent or sandbox.payment_id(provider_session_id),
                "client_reference_id": "ref",
                "metadata": {},
            }
        },
    }
    return json.dumps(event).encode()


async def deliver(
    client: httpx.AsyncClient, body: bytes, signature: str | None, **headers: str
) -> httpx.Response:
    sent = {"content-type": "application/json", **headers}
    if signature is not None:
        sent["billgraph-signature"] = signature
    return await client.post("/webhooks/sandbox", content=body, headers=sent)


def refunded_event(
    payment_intent: str, amount: int, amount_refunded: int, currency: str = "usd"
) -> bytes:
    """A charge.refunded event (a refund made in the provider's dashboard) as Stripe shapes
    it: `amount_refunded` is the charge's refunded total so far."""
    return sandbox.refunded_event(
        payment_intent,
        amount=amount,
        amount_refunded=amount_refunded,
        currency=currency,
        created=int(time.time()),
    )


REFUND_SESSION = f"""
mutation($input: RefundCheckoutSessionInput!) {{
  refundCheckoutSession(input: $input) {{
    __typename
    ... on RefundCheckoutSessionSuccess {{
      replayed
      refund {{ id amount walletDebited shortfall status source reason createdAt }}
      checkoutSession {{ {SESSION_FIELDS} }}
      wallet {{ id balance currency }}
    }}
    ... on InsufficientBalanceError {{ code message balance requested currency }}
    ... on ProviderError {{ code message provider declineCode }}
    ... on IdempotencyConflictError {{ code message idempotencyKey }}
    ... on ValidationError {{ code message field }}
    ... on UserError {{ code message }}
  }}
}}
"""


def refund_input(session_id: str, amount: int, **fields: Any) -> dict[str, Any]:
    return {
        "input": {
            "checkoutSessionId": session_id,
            "amount": amount,
            "idempotencyKey": f"refund-{next(_counter)}",
            **fields,
        }
    }


async def refund(tenant: Tenant, session_id: str, amount: int, **fields: Any) -> dict[str, Any]:
    """refundCheckoutSession's result, whatever its type."""
    body = await tenant.data(REFUND_SESSION, refund_input(session_id, amount, **fields))
    return body["refundCheckoutSession"]  # type: ignore[no-any-return]
