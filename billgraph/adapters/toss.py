"""Toss Payments, over httpx (being built: every call is refused for now)."""

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


class TossProvider:
    name = Provider.TOSS

    def __init__(
        self, *, secret_key: str, client_key: str, api_base: str, public_url: str, timeout: float
    ):
        self.secret_key = secret_key
        self.client_key = client_key
        self.public_url = public_url
        self.api_base = api_base
        self.timeout = timeout

    def _unbuilt(self) -> ProviderError:
        return ProviderError("provider_not_configured", "Toss is not available yet.", "TOSS")

    async def ensure_customer(self, request: CustomerRequest) -> str | None:
        raise self._unbuilt()

    async def create_checkout_session(self, request: SessionRequest) -> ProviderSession:
        raise self._unbuilt()

    async def refund(self, request: RefundRequest) -> ProviderRefund:
        raise self._unbuilt()

    async def parse_webhook(
        self, body: bytes, event: object, headers: Mapping[str, str], now: float
    ) -> WebhookEvent:
        raise InvalidWebhook("Toss webhooks are not accepted yet.")

    async def close(self) -> None:
        return None
