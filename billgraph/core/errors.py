"""Business errors a caller must handle, each with a stable machine-readable code.

BillingError
├── ValidationError            bad input: nothing was written
├── NotFoundError              unknown id, or an id of another organization
├── ConflictError              a unique value (email, external id) already in use
├── InsufficientBalanceError   a debit larger than the balance: nothing was written
├── IdempotencyConflictError   a key reused with different parameters: nothing was written
└── ProviderError              a payment provider refused or failed the call (or is not
                               configured): nothing was written
"""


class BillingError(Exception):
    code = "BILLING_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(BillingError):
    code = "VALIDATION_ERROR"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(BillingError):
    code = "NOT_FOUND"


class ConflictError(BillingError):
    code = "CONFLICT"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InsufficientBalanceError(BillingError):
    code = "INSUFFICIENT_BALANCE"

    def __init__(self, balance: int, requested: int, currency: str) -> None:
        super().__init__(
            f"Insufficient balance: {requested} requested, {balance} available ({currency} minor units)."
        )
        self.balance = balance
        self.requested = requested
        self.currency = currency


class IdempotencyConflictError(BillingError):
    code = "IDEMPOTENCY_CONFLICT"

    def __init__(self, idempotency_key: str) -> None:
        super().__init__(
            f"Idempotency key {idempotency_key!r} was already used with different parameters."
        )
        self.idempotency_key = idempotency_key


class ProviderError(BillingError):
    """`code` is provider-neutral (card_declined, insufficient_funds, expired_card,
    authentication_required, provider_unavailable, provider_not_configured, invalid_request);
    `decline_code` is the provider's own, when it gave one."""

    def __init__(
        self, code: str, message: str, provider: str, decline_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.provider = provider
        self.decline_code = decline_code
