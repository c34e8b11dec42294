"""Billing: plans, test clocks, subscriptions, invoices, the billing run and dunning."""
