"""Configuration from the environment (prefix BILLGRAPH_), with embedded defaults."""

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./billgraph.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BILLGRAPH_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # Connections per process; PostgreSQL only (SQLite serializes writers anyway).
    database_pool_size: int = Field(default=20, ge=1, le=500)
    # Server-side statement timeout on PostgreSQL, in milliseconds.
    statement_timeout_ms: int = Field(default=5000, ge=100)
    # Requests per second allowed per API key (token bucket, per process); 0 disables.
    rate_limit_per_second: float = Field(default=50.0, ge=0)
    rate_limit_burst: int = Field(default=200, ge=1)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    max_query_depth: int = 12
    max_aliases: int = 100
    max_tokens: int = 15_000
    max_query_cost: int = 50_000
    max_mutations_per_document: int = 4
    # Live events between replicas: "auto" is PostgreSQL LISTEN/NOTIFY on PostgreSQL and in
    # process on SQLite; "memory" keeps them in this process.
    event_broker: Literal["auto", "postgres", "memory"] = "auto"
    # Events a subscriber may have pending before its queue coalesces per wallet.
    subscription_queue_size: int = Field(default=100, ge=1, le=10_000)
    max_subscriptions_per_socket: int = Field(default=20, ge=1, le=1_000)
    # Seconds between keep-alives on a socket ("ka" on graphql-ws, ping on graphql-transport-ws).
    websocket_keep_alive_seconds: float = Field(default=15.0, gt=0)
    # A socket that has not sent connection_init by then is closed (4408).
    websocket_init_timeout_seconds: float = Field(default=10.0, gt=0)
    # Idle keep-alive connections are closed after this long. Longer than load balancers'
    # idle timeouts (60 s is common), so the gateway never closes a connection the balancer
    # (or a busy client) is about to reuse: that race is a failed request.
    http_keep_alive_seconds: int = Field(default=75, ge=1)
    log_level: str = "INFO"
    log_json: bool = True
    # OpenTelemetry traces over OTLP/HTTP to this collector (its base URL, e.g.
    # http://otel-collector:4318; /v1/traces is appended). Unset, the standard
    # OTEL_EXPORTER_OTLP_ENDPOINT turns them on; neither set, tracing is off and costs nothing.
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str = "billgraph"
    # Base of the hosted pages (the sandbox's checkout page) and of the redirects to them.
    public_url: str = "http://127.0.0.1:8000"
    # Signs and verifies the sandbox's webhook events; unset, one is generated on first use
    # and stored in the database, so every replica uses the same.
    sandbox_webhook_secret: str | None = None
    # How long a checkout session can be paid (Stripe accepts 30 minutes to 24 hours).
    checkout_expires_minutes: int = Field(default=1440, ge=30, le=1440)
    # Stripe: without the secret key (sk_...) and the webhook endpoint's secret (whsec_...)
    # the STRIPE provider is unavailable. The API base is Stripe's own unless a test or a
    # proxy says otherwise.
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str = "https://api.stripe.com"
    # Toss Payments: the secret key (test_sk_... / live_sk_...) for the API and the client key
    # (test_ck_... / test_gck_...) for the payment widget; without both TOSS is unavailable.
    toss_secret_key: str | None = None
    toss_client_key: str | None = None
    toss_api_base: str = "https://api.tosspayments.com"
    # Timeout of one call to a provider's API, in seconds (idempotent calls are retried).
    provider_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Fernet key (urlsafe base64 of 32 bytes) encrypting stored credentials (Toss billing
    # keys). Unset, nothing that needs it can be stored.
    encryption_key: str | None = None
    # Billing: the days between consecutive attempts to pay an invoice ("3,3": the first when
    # due, retries 3 and 6 days later, suspended when the third fails); what a trial ending
    # without a payment method does; and how often `billgraph serve` runs the billing job
    # (0: never, run `billgraph bill` from cron instead; the serve loop is not built yet).
    dunning_retry_days: str = "3,3"
    trial_end_without_payment_method: Literal["incomplete", "cancel"] = "incomplete"
    billing_interval_seconds: int = Field(default=0, ge=0)


@lru_cache
def get_settings() -> Settings:
    return Settings()
