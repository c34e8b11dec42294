"""The billing domain's enums, declared to Strawberry (they are the domain's own)."""

import strawberry

from billgraph.billing import dunning, invoices, periods

strawberry.enum(periods.PlanInterval, description="How often a plan bills: every month or year.")
strawberry.enum(
    dunning.SubscriptionStatus,
    description="INCOMPLETE until its first invoice is paid; TRIALING until its trial ends; "
    "ACTIVE; PAST_DUE while a renewal's payment is retried; SUSPENDED when the last retry "
    "failed (a paid invoice makes it ACTIVE again); CANCELED for good.",
)
strawberry.enum(
    invoices.InvoiceStatus,
    description="OPEN until paid (PAID) or voided (VOID). DRAFT and UNCOLLECTIBLE are not "
    "used yet.",
)
PlanInterval = periods.PlanInterval
SubscriptionStatus = dunning.SubscriptionStatus
InvoiceStatus = invoices.InvoiceStatus
