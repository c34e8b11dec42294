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
    """A customer's payment at a provider that credits a wallet once the provider confirms it
    (mode TOP_UP), or the collection of a subscription's payment method (mode SUBSCRIPTION,
    `subscription_id` set: its amount is what the subscription's open invoice owed, 0 if none,
    and it credits nothing).

    `provider_session_id` is the provider's name for it (Stripe's `cs_...`, Toss's orderId or,
    for a billing authorization, its customerKey, the sandbox's own token, which is also the
    secret part of its hosted page's address).
    """

    __tablename__ = "checkout_sessions"
    __table_args__ = (
        UniqueConstraint("organization_id", "idempotency_key"),
        UniqueConstraint("provider", "provider_session_id"),
        CheckConstraint(
            "amount > 0 OR (mode = 'SUBSCRIPTION' AND amount = 0)", name="amount_by_mode"
        ),
        CheckConstraint("status IN ('OPEN', 'COMPLETE', 'EXPIRED', 'FAILED')", name="status_known"),
        Index("ix_checkout_sessions_customer_id_id", "customer_id", "id"),
        Index("ix_checkout_sessions_subscription_id", "subscription_id"),
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
    # Mode SUBSCRIPTION: the subscription whose payment method the session collects, and the
    # payment method it saved once complete.
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))


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


# --- billing: plans, subscriptions, invoices -------------------------------------------------


class TestClock(Base):
    """A clock frozen at `frozen_time` that only moves forward when told: everything about its
    customers (subscription start, periods, trials, dunning) takes its time from it."""

    __tablename__ = "test_clocks"
    __test__ = False  # not a pytest test class, whatever its name
    __table_args__ = (Index("ix_test_clocks_organization_id_id", "organization_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str | None] = mapped_column(String(200))
    frozen_time: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerTestClock(Base):
    """The test clock a customer lives on (at most one, for good). A table of its own rather
    than a column of customers: customers' rows and statements stay as they are."""

    __tablename__ = "customer_test_clocks"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    test_clock_id: Mapped[int] = mapped_column(ForeignKey("test_clocks.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Plan(Base):
    """What a subscription pays each period: `amount` every `interval_count` months or years,
    after `trial_days` free. An archived plan (`active` false) takes no new subscriptions."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("interval IN ('MONTH', 'YEAR')", name="interval_known"),
        CheckConstraint("interval_count >= 1", name="interval_count_positive"),
        CheckConstraint("trial_days >= 0", name="trial_days_not_negative"),
        Index("ix_plans_organization_id_id", "organization_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    interval: Mapped[str] = mapped_column(String(8))
    interval_count: Mapped[int] = mapped_column(Integer, default=1)
    trial_days: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PaymentMethod(Base):
    """A customer's saved way to pay at a provider: the sandbox's test card (`card`) or a Toss
    billing key (`billing_key`). `secret` is what charging needs: a Toss billing key encrypted
    with core.secrets.Vault (never returned, never logged), or the sandbox test card's number
    (no real card reaches the sandbox). `brand` and `last4` are for display."""

    __tablename__ = "payment_methods"
    __table_args__ = (
        CheckConstraint("kind IN ('card', 'billing_key')", name="kind_known"),
        Index("ix_payment_methods_customer_id_id", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    provider: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    secret: Mapped[str] = mapped_column(String(1000))
    # Toss's customerKey the billing key was issued for (charges must name it).
    provider_customer_key: Mapped[str | None] = mapped_column(String(255))
    brand: Mapped[str | None] = mapped_column(String(32))
    last4: Mapped[str | None] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Subscription(Base):
    """A customer on a plan, billed each period by billgraph's billing run (sandbox, Toss), or
    by Stripe (provider STRIPE: mirrored from its webhooks, never due in the run).

    `next_action_at` is when the run must look at it next (a reminder, a renewal, a payment
    attempt, a cancellation at period end); NULL when nothing is scheduled. `test_clock_id` is
    the customer's clock, copied at creation: its subscriptions' time is the clock's."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("organization_id", "idempotency_key"),
        CheckConstraint(
            "status IN ('INCOMPLETE', 'TRIALING', 'ACTIVE', 'PAST_DUE', 'SUSPENDED', 'CANCELED')",
            name="status_known",
        ),
        CheckConstraint("current_period_end > current_period_start", name="period_ordered"),
        Index("ix_subscriptions_customer_id_id", "customer_id", "id"),
        Index("ix_subscriptions_next_action_at", "next_action_at"),
        Index(
            "ix_subscriptions_provider_provider_subscription_id",
            "provider",
            "provider_subscription_id",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    # The plan the next period switches to (a change of plan without proration).
    pending_plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    status: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(16))
    payment_method_id: Mapped[int | None] = mapped_column(ForeignKey("payment_methods.id"))
    test_clock_id: Mapped[int | None] = mapped_column(ForeignKey("test_clocks.id"), index=True)
    current_period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    current_period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    # Periods are counted from the anchor, so renewals keep its day (Jan 31 -> Feb 29 -> Mar 31).
    billing_anchor: Mapped[datetime] = mapped_column(UTCDateTime)
    trial_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_billing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The next_billing_at whose reminder (trial_will_end, renewal_upcoming) has been recorded.
    reminded_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A subscription Stripe runs (provider STRIPE): its sub_... once its checkout completed,
    # and when the Stripe object last mirrored was fetched (an older fetch is never applied).
    provider_subscription_id: Mapped[str | None] = mapped_column(String(255))
    provider_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InvoiceCounter(Base):
    """The last invoice number of an organization: incremented in the transaction that
    issues the invoice, so a rollback gives the number back and numbers have no gaps."""

    __tablename__ = "invoice_counters"
    __table_args__ = (CheckConstraint("last_number >= 0", name="last_number_not_negative"),)

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    last_number: Mapped[int] = mapped_column(BigInteger, default=0)


class Invoice(Base):
    """What a period of a subscription costs and how it was paid: `subtotal` (the lines),
    `total` = subtotal - discount, `wallet_credit_applied` (debited from the wallet first),
    `amount_due` = total - wallet credit (what the payment method owes), `amount_paid` (what
    it has paid). PAID when amount_paid == amount_due. One invoice per subscription period,
    plus one per prorated change of plan (its period starts at the change)."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("organization_id", "number"),
        UniqueConstraint("subscription_id", "period_start"),
        UniqueConstraint("hosted_token"),
        CheckConstraint(
            "status IN ('DRAFT', 'OPEN', 'PAID', 'VOID', 'UNCOLLECTIBLE')", name="status_known"
        ),
        # Negative only for a prorated downgrade: what it credits goes back to the wallet
        # (wallet_credit_applied = total < 0), and nothing is due.
        CheckConstraint(
            "discount >= 0 AND amount_due >= 0 AND amount_paid >= 0 AND ("
            "(subtotal >= 0 AND total >= 0 AND wallet_credit_applied >= 0) "
            "OR (total < 0 AND wallet_credit_applied = total))",
            name="amounts_in_range",
        ),
        CheckConstraint("total = subtotal - discount", name="total_is_subtotal_less_discount"),
        CheckConstraint(
            "amount_due = total - wallet_credit_applied", name="amount_due_is_total_less_credit"
        ),
        CheckConstraint("amount_paid <= amount_due", name="paid_within_due"),
        CheckConstraint("number > 0", name="number_positive"),
        CheckConstraint("attempt_count >= 0", name="attempt_count_not_negative"),
        Index("ix_invoices_customer_id_id", "customer_id", "id"),
        Index("ix_invoices_provider_invoice_id", "provider_invoice_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id"))
    number: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger, default=0)
    wallet_credit_applied: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger)
    amount_due: Mapped[int] = mapped_column(BigInteger)
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_payment_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    # The secret part of the hosted invoice page's address.
    hosted_token: Mapped[str] = mapped_column(String(64))
    # The wallet's entry: the debit that applied credit to it, or the credit a prorated
    # downgrade gave back; NULL when there is none.
    ledger_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # An invoice of a subscription Stripe runs: its in_..., and when it was last fetched.
    provider_invoice_id: Mapped[str | None] = mapped_column(String(255))
    provider_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        Index("ix_invoice_lines_invoice_id_id", "invoice_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    description: Mapped[str] = mapped_column(String(500))
    # Signed: a proration credit is a negative line.
    amount: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)


class InvoiceAttempt(Base):
    """One attempt to charge an invoice's amount due to the payment method. Recorded PENDING
    before the provider is asked (whose idempotency key derives from the invoice and the
    attempt's number), so a crash then a rerun asks again with the same key: one charge."""

    __tablename__ = "invoice_attempts"
    __table_args__ = (
        UniqueConstraint("invoice_id", "number"),
        UniqueConstraint("invoice_id", "idempotency_key"),
        CheckConstraint("outcome IN ('PENDING', 'SUCCEEDED', 'FAILED')", name="outcome_known"),
        CheckConstraint("number >= 1", name="number_positive"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    number: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(16))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(500))
    provider_charge_id: Mapped[str | None] = mapped_column(String(255))
    # The client's key of a payInvoice; NULL for the billing run's own attempts.
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SubscriptionEvent(Base):
    """What happened to a subscription (created, activated, payment_failed, ...), newest last
    by id; the customer-facing notifications of the billing routine."""

    __tablename__ = "subscription_events"
    __table_args__ = (
        CheckConstraint(
            "type IN ('created', 'activated', 'trial_will_end', 'renewal_upcoming', "
            "'payment_succeeded', 'payment_failed', 'past_due', 'suspended', 'plan_changed', "
            "'cancel_scheduled', 'canceled', 'resumed')",
            name="type_known",
        ),
        Index("ix_subscription_events_subscription_id_id", "subscription_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"))
    type: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(String(500))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    # The subscription's time (its test clock's, if it has one).
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- billing: coupons and promotion codes ----------------------------------------------------


class Coupon(Base):
    """A discount: `percent_off` (whole percent) or `amount_off` in `currency`, for the first
    invoice (ONCE), the invoices of `duration_in_months` months (REPEATING) or all (FOREVER).
    `times_redeemed` counts the subscriptions that took it, never past `max_redemptions`."""

    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint(
            "(percent_off IS NOT NULL AND amount_off IS NULL AND currency IS NULL) OR "
            "(percent_off IS NULL AND amount_off IS NOT NULL AND currency IS NOT NULL)",
            name="percent_or_amount",
        ),
        CheckConstraint("percent_off BETWEEN 1 AND 100", name="percent_off_in_range"),
        CheckConstraint("amount_off > 0", name="amount_off_positive"),
        CheckConstraint("duration IN ('ONCE', 'REPEATING', 'FOREVER')", name="duration_known"),
        CheckConstraint(
            "(duration = 'REPEATING' AND duration_in_months >= 1) OR "
            "(duration <> 'REPEATING' AND duration_in_months IS NULL)",
            name="months_for_repeating",
        ),
        CheckConstraint(
            "times_redeemed >= 0 AND (max_redemptions IS NULL OR "
            "(max_redemptions >= 1 AND times_redeemed <= max_redemptions))",
            name="redemptions_within_max",
        ),
        Index("ix_coupons_organization_id_id", "organization_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(200))
    percent_off: Mapped[int | None] = mapped_column(Integer)
    amount_off: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    duration: Mapped[str] = mapped_column(String(16))
    duration_in_months: Mapped[int | None] = mapped_column(Integer)
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    times_redeemed: Mapped[int] = mapped_column(Integer, default=0)
    redeem_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PromotionCode(Base):
    """A code customers type to get a coupon. `lookup` is the code upper-cased: codes are
    unique per organization and matched case-insensitively. `minimum_amount` is in
    `minimum_amount_currency` (as Stripe's): only a plan in that currency, of at least that
    amount, takes the code. An archived code (`active` false) takes no new redemptions."""

    __tablename__ = "promotion_codes"
    __table_args__ = (
        UniqueConstraint("organization_id", "lookup"),
        CheckConstraint(
            "times_redeemed >= 0 AND (max_redemptions IS NULL OR "
            "(max_redemptions >= 1 AND times_redeemed <= max_redemptions))",
            name="redemptions_within_max",
        ),
        CheckConstraint(
            "(minimum_amount IS NULL AND minimum_amount_currency IS NULL) OR "
            "(minimum_amount > 0 AND minimum_amount_currency IS NOT NULL)",
            name="minimum_with_currency",
        ),
        Index("ix_promotion_codes_organization_id_id", "organization_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    lookup: Mapped[str] = mapped_column(String(64))
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    times_redeemed: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_time_only: Mapped[bool] = mapped_column(default=False)
    minimum_amount: Mapped[int | None] = mapped_column(BigInteger)
    minimum_amount_currency: Mapped[str | None] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SubscriptionDiscount(Base):
    """The coupon a subscription redeemed (through a promotion code) and when it stops:
    invoices whose period starts before `ends_at` are discounted; NULL ends_at is for ever.
    A table of its own: subscriptions' rows stay as they are."""

    __tablename__ = "subscription_discounts"

    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id"))
    promotion_code_id: Mapped[int | None] = mapped_column(ForeignKey("promotion_codes.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
