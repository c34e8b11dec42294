"""The checkout domain's enums, declared to Strawberry (they are the domain's own)."""

import strawberry

from billgraph.adapters import base
from billgraph.checkout import service

strawberry.enum(base.Provider, name="PaymentProvider", description="Where a customer pays.")
strawberry.enum(
    service.CheckoutMode,
    description="TOP_UP credits the wallet with the amount paid; SUBSCRIPTION is not available "
    "yet (a ValidationError).",
)
strawberry.enum(
    service.CheckoutStatus,
    description="OPEN until paid (COMPLETE) or expired (EXPIRED); FAILED when the provider "
    "could not open it.",
)
PaymentProvider = base.Provider
CheckoutMode = service.CheckoutMode
CheckoutStatus = service.CheckoutStatus
