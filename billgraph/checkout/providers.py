"""The payment providers this gateway can use, built once per app from the settings.

A provider without its keys is unavailable: asking for it is a ProviderError coded
provider_not_configured, before anything is written. Stripe needs BILLGRAPH_STRIPE_SECRET_KEY
and BILLGRAPH_STRIPE_WEBHOOK_SECRET; Toss Payments BILLGRAPH_TOSS_SECRET_KEY and
BILLGRAPH_TOSS_CLIENT_KEY. The sandbox needs no keys: its webhook secret comes from
BILLGRAPH_SANDBOX_WEBHOOK_SECRET, or is generated on first use and kept in the database.
"""

import asyncio
import secrets

from billgraph.adapters.base import PaymentProvider, Provider
from billgraph.adapters.sandbox import SandboxProvider
from billgraph.adapters.stripe import StripeProvider
from billgraph.adapters.toss import TossProvider
from billgraph.checkout import repository
from billgraph.core.errors import ProviderError
from billgraph.core.unit import unit_of_work
from billgraph.db.engine import Database
from billgraph.settings import Settings

SANDBOX_SECRET = "sandbox_webhook_secret"
INSTALLATION = "installation_id"


class Providers:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self._sandbox: SandboxProvider | None = None
        self._stripe: StripeProvider | None = None
        self._toss: TossProvider | None = None
        self._installation: str | None = None
        self._lock = asyncio.Lock()

    async def key_prefix(self) -> str:
        """What starts every idempotency key billgraph sends a provider: `billgraph-<this
        installation's random id>-`, stored on first use so replicas agree. Keys derived from
        database ids alone would collide at the provider between two installations sharing an
        account (or a database rebuilt within the provider's 24 h replay window)."""
        if self._installation is None:
            async with unit_of_work(self.database) as unit:
                self._installation = await repository.ensure_secret(
                    unit, INSTALLATION, secrets.token_hex(8)
                )
        return f"billgraph-{self._installation}-"

    async def get(self, provider: Provider) -> PaymentProvider:
        """The adapter; ProviderError(provider_not_configured) if this gateway has none."""
        if provider is Provider.SANDBOX:
            return await self.sandbox()
        if provider is Provider.STRIPE:
            return self.stripe()
        return self.toss()

    def stripe(self) -> StripeProvider:
        if self._stripe is None:
            s = self.settings
            if not (s.stripe_secret_key and s.stripe_webhook_secret):
                raise _not_configured(Provider.STRIPE)
            self._stripe = StripeProvider(
                secret_key=s.stripe_secret_key,
                webhook_secret=s.stripe_webhook_secret,
                api_base=s.stripe_api_base,
                timeout=s.provider_timeout_seconds,
            )
        return self._stripe

    def toss(self) -> TossProvider:
        if self._toss is None:
            s = self.settings
            if not (s.toss_secret_key and s.toss_client_key):
                raise _not_configured(Provider.TOSS)
            self._toss = TossProvider(
                secret_key=s.toss_secret_key,
                client_key=s.toss_client_key,
                api_base=s.toss_api_base,
                public_url=s.public_url,
                timeout=s.provider_timeout_seconds,
            )
        return self._toss

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

    async def close(self) -> None:
        """Release the HTTP clients of the adapters that were built."""
        for adapter in (self._stripe, self._toss):
            if adapter is not None:
                await adapter.close()


def _not_configured(provider: Provider) -> ProviderError:
    return ProviderError(
        "provider_not_configured",
        f"{provider.value} is not configured on this gateway.",
        provider.value,
    )
