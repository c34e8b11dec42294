"""The checkout domain's enums, declared to Strawberry (they are the domain's own)."""

import strawberry

from billgraph.adapters import base
from billgraph.checkout import refunds, service

strawberry.enum(base.Provider, name="PaymentProvider", description="Where a customer pays.")
strawberry.enum(
    service.CheckoutMode,
    description="TOP_UP credits the wallet with the amount paid; SUBSCRIPTION collects (or "
    "replaces) a subscription's payment method and pays its open invoice with it (SANDBOX and "
    "TOSS; it credits no wallet).",
)
strawberry.enum(
    service.CheckoutStatus,
    description="OPEN until paid (COMPLETE) or expired (EXPIRED); FAILED when the payment "
    "failed for good (an asynchronous payment that bounced, an aborted order).",
)
strawberry.enum(
    refunds.RefundStatus,
    description="PENDING until the provider has refunded and the wallet is debited; FAILED when "
    "the provider refused (nothing was taken from the wallet).",
)
strawberry.enum(
    refunds.RefundSource,
    description="API: refundCheckoutSession; PROVIDER: made in the provider's dashboard.",
)
PaymentProvider = base.Provider
CheckoutMode = service.CheckoutMode
CheckoutStatus = service.CheckoutStatus
RefundStatus = refunds.RefundStatus
RefundSource = refunds.RefundSource
