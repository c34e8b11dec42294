"""Stripe, through the official SDK (being built: every call is refused for now)."""

from collections.abc import Mapping

from billgraph.adapters.base import (
    CustomerRequest,
    InvalidWebhook,
    Provider,
    ProviderRefund,
    ProviderSession,
    RefundRequest,
    SessionRequest,
    WebhookEvent,
)
from billgraph.core.errors import ProviderError


class StripeProvider:
    name = Provider.STRIPE

    def __init__(self, *, secret_key: str, webhook_secret: str, api_base: str, timeout: float):
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.api_base = api_base
        self.timeout = timeout

    def _unbuilt(self) -> ProviderError:
        return ProviderError("provider_not_configured", "Stripe is not available yet.", "STRIPE")

    async def ensure_customer(self, request: CustomerRequest) -> str | None:
        raise self._unbuilt()

    async def create_checkout_session(self, request: SessionRequest) -> ProviderSession:
        raise self._unbuilt()

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        raise self._unbuilt()

    async def parse_webhook(
        self, body: bytes, event: object, headers: Mapping[str, str], now: float
    ) -> WebhookEvent:
        raise InvalidWebhook("Stripe webhooks are not accepted yet.")

    async def close(self) -> None:
        return None
