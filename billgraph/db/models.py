"""SQLAlchemy 2 typed models: one class per table, named after the domain.

Relationships are not declared: every read goes through an explicit query (loaders or
services), so a hidden lazy load cannot exist. Money columns are BIGINT minor units.
"""

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an "INTEGER PRIMARY KEY"; PostgreSQL gets BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    default_currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """A partner's credential. Only the SHA-256 of the secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The first characters of the secret, so a person can tell keys apart in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(100))  # comma-separated: "read,write"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Customer(Base):
    """A customer of an organization. Soft-deleted: the row stays for the ledger's sake."""

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("organization_id", "email_normalized"),
        UniqueConstraint("organization_id", "external_id"),
        Index("ix_customers_organization_id_id", "organization_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    email: Mapped[str | None] = mapped_column(String(254))
    # Lower-cased email: uniqueness is case-insensitive. NULL once the customer is deleted.
    email_normalized: Mapped[str | None] = mapped_column(String(254))
    name: Mapped[str | None] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Wallet(Base):
    """One customer's balance in one currency. `version` is the sequence of its last entry."""

    __tablename__ = "wallets"
    __table_args__ = (
        UniqueConstraint("customer_id", "currency"),
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("low_balance_threshold >= 0", name="low_balance_threshold_not_negative"),
        Index("ix_wallets_organization_id", "organization_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    # A debit that takes the balance from at-or-above this to below it is a low-balance event.
    low_balance_threshold: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerEntry(Base):
    """An append-only movement of money on a wallet (triggers refuse UPDATE and DELETE)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("wallet_id", "sequence"),
        UniqueConstraint("organization_id", "idempotency_key"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        CheckConstraint("entry_type IN ('CREDIT', 'DEBIT')", name="entry_type_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    wallet_id: Mapped[int] = mapped_column(ForeignKey("wallets.id"))
    # Position of the entry in its wallet's history: 1, 2, 3, ... (the wallet's version).
    sequence: Mapped[int] = mapped_column(BigInteger)
    entry_type: Mapped[str] = mapped_column(String(6))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    balance_after: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(500))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the request's parameters: a replay must match it, or it is a conflict.
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CheckoutSession(Base):
    """A customer's payment at a provider that credits a wallet once the provider confirms it.

    `provider_session_id` is the provider's name for it (Stripe's `cs_...`, Toss's orderId, the
    sandbox's own token, which is also the secret part of its hosted page's address).
    """

    __tablename__ = "checkout_sessions"
    __table_args__ = (
        UniqueConstraint("organization_id", "idempotency_key"),
        UniqueConstraint("provider", "provider_session_id"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('OPEN', 'COMPLETE', 'EXPIRED', 'FAILED')", name="status_known"),
        Index("ix_checkout_sessions_customer_id_id", "customer_id", "id"),
        Index("ix_checkout_sessions_provider_payment_id", "provider", "provider_payment_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    provider: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    success_url: Mapped[str] = mapped_column(String(2000))
    cancel_url: Mapped[str] = mapped_column(String(2000))
    url: Mapped[str] = mapped_column(String(2000))
    provider_session_id: Mapped[str] = mapped_column(String(255))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the creation's parameters: a replay must match it, or it is a conflict.
    request_hash: Mapped[str] = mapped_column(String(64))
    # The credit the payment produced; NULL until paid.
    ledger_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    last_payment_error_code: Mapped[str | None] = mapped_column(String(64))
    last_payment_error_message: Mapped[str | None] = mapped_column(String(500))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The provider's id of the payment, once paid (Stripe's payment_intent, Toss's paymentKey):
    # what a refund names and what a dashboard refund's event carries.
    provider_payment_id: Mapped[str | None] = mapped_column(String(255))


class ProviderCustomer(Base):
    """A billgraph customer's id at a provider (Stripe's cus_..., Toss's customerKey): made once
    per customer and provider, and never shared by two customers."""

    __tablename__ = "provider_customers"
    __table_args__ = (
        UniqueConstraint("customer_id", "provider"),
        UniqueConstraint("provider", "provider_customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    provider: Mapped[str] = mapped_column(String(16))
    provider_customer_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Refund(Base):
    """Money given back from a paid checkout session: at the provider first, then taken from
    the wallet (`wallet_debited`), never below zero (`shortfall`: what the customer had already
    spent). PENDING until both are done; a PENDING refund counts against what is refundable,
    so two refunds never give back more than was paid. `source` is API (refundCheckoutSession)
    or PROVIDER (made in the provider's dashboard, learnt from its webhook)."""

    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("organization_id", "idempotency_key"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "wallet_debited >= 0 AND shortfall >= 0 AND wallet_debited + shortfall <= amount",
            name="debit_within_amount",
        ),
        CheckConstraint("status IN ('PENDING', 'SUCCEEDED', 'FAILED')", name="status_known"),
        Index("ix_refunds_checkout_session_id_id", "checkout_session_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    checkout_session_id: Mapped[int] = mapped_column(ForeignKey("checkout_sessions.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    wallet_debited: Mapped[int] = mapped_column(BigInteger, default=0)
    shortfall: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    allow_shortfall: Mapped[bool] = mapped_column(default=False)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    provider_refund_id: Mapped[str | None] = mapped_column(String(255))
    # The wallet debit it made; NULL while PENDING or when nothing was left to take.
    ledger_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEvent(Base):
    """The webhook inbox: every provider event, stored once (by the provider's event id) in
    the transaction that acts on it, so a duplicate finds it and does nothing."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("provider", "provider_event_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100))
    checkout_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("checkout_sessions.id"), index=True
    )
    # What processing it did: credited, late_credit, already_complete, ignored.
    outcome: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GeneratedSecret(Base):
    """A secret the gateway made itself when none was configured (the sandbox's webhook
    signing secret), kept so that every replica signs and verifies with the same one."""

    __tablename__ = "generated_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
