"""The payment providers this gateway can use, built once per app from the settings.

A provider without its keys (or, for now, without an adapter: Stripe and Toss) is
unavailable: asking for it is a ProviderError coded provider_not_configured, before anything
is written. The sandbox needs no keys: its webhook secret comes from
BILLGRAPH_SANDBOX_WEBHOOK_SECRET, or is generated on first use and kept in the database.
"""

import asyncio
import secrets

from billgraph.adapters.base import PaymentProvider, Provider
from billgraph.adapters.sandbox import SandboxProvider
from billgraph.checkout import repository
from billgraph.core.errors import ProviderError
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database
from billgraph.settings import Settings

SANDBOX_SECRET = "sandbox_webhook_secret"


class Providers:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self._sandbox: SandboxProvider | None = None
        self._lock = asyncio.Lock()

    async def get(self, provider: Provider) -> PaymentProvider:
        """The adapter; ProviderError(provider_not_configured) if this gateway has none."""
        if provider is Provider.SANDBOX:
            return await self.sandbox()
        raise ProviderError(
            "provider_not_configured",
            f"{provider.value} is not configured on this gateway.",
            provider.value,
        )

    async def sandbox(self) -> SandboxProvider:
        if self._sandbox is None:
            async with self._lock:
                if self._sandbox is None:
                    secret = self.settings.sandbox_webhook_secret
                    if not secret:
                        async with unit_of_work(self.database) as unit:
                            secret = await repository.ensure_secret(
                                unit, SANDBOX_SECRET, "whsec_" + secrets.token_hex(32)
                            )
                    self._sandbox = SandboxProvider(self.settings.public_url, secret)
        return self._sandbox
