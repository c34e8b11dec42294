"""The hosted invoice page (`GET /invoices/{token}`): what an invoice shows, for the customer
to read and print, with no API key — its address's token is the secret (unguessable), as the
sandbox's checkout page's session id is.

Plain HTML, no script, its own stylesheet (with a print stylesheet that drops the page's
only control) under a self-only Content-Security-Policy; nothing beyond what the invoice
shows: no internal ids, nothing about the payment method. An unknown or malformed token is a
404 page, looked up only when it has a token's shape.
"""

import html
import re
from datetime import datetime

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from billgraph.billing import coupons, repository
from billgraph.billing.invoices import invoice_number
from billgraph.currencies import format_amount
from billgraph.db.engine import Database
from billgraph.db.models import Coupon, Customer, Invoice, InvoiceLine, Organization

# secrets.token_urlsafe(32) makes 43 characters; the column holds up to 64.
TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")

POLICY = "; ".join(
    (
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "content-security-policy": POLICY,
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-robots-tag": "noindex",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
}


class InvoiceRoutes:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def page(self, request: Request) -> Response:
        token = request.path_params["token"]
        if not TOKEN.fullmatch(token):
            return _not_found()
        async with self.database.sessions() as session:
            invoice = await repository.invoice_by_hosted_token(session, token)
            if invoice is None:
                return _not_found()
            organization = await session.get(Organization, invoice.organization_id)
            customer = await session.get(Customer, invoice.customer_id)
            lines = await repository.invoice_lines(session, [invoice.id])
            coupon = None
            if invoice.discount and invoice.subscription_id is not None:
                coupon = await coupons.subscription_coupon(session, invoice.subscription_id)
        org_name = organization.name if organization is not None else ""
        return _page(
            f"Invoice {invoice_number(invoice)}",
            _invoice(invoice, org_name, customer, lines, coupon),
            200,
        )


def _date(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d}"


def _money(amount: int, currency: str) -> str:
    """Signed amounts too (a proration credit line, what a discount takes off)."""
    return html.escape(format_amount(amount, currency))


def _invoice(
    invoice: Invoice,
    org_name: str,
    customer: Customer | None,
    lines: list[InvoiceLine],
    coupon: Coupon | None = None,
) -> str:
    esc = html.escape
    number = invoice_number(invoice)
    currency = invoice.currency
    facts = [
        ("Invoice number", number),
        ("Status", invoice.status.capitalize()),
        ("Issue date", _date(invoice.created_at)),
        ("Due date", _date(invoice.due_at)),
    ]
    if invoice.paid_at is not None:
        facts.append(("Paid date", _date(invoice.paid_at)))
    billed = []
    if customer is not None:
        if customer.name:
            billed.append(f'<span class="name">{esc(customer.name)}</span>')
        if customer.email:
            billed.append(f'<span class="email">{esc(customer.email)}</span>')
    rows = "".join(
        "<tr>"
        f"<td>{esc(line.description)}</td>"
        f'<td class="period">{_date(line.period_start)} to {_date(line.period_end)}</td>'
        f'<td class="num">{line.quantity:,}</td>'
        f'<td class="num">{_money(line.amount, currency)}</td>'
        "</tr>"
        for line in lines
    )
    # In the order of the arithmetic: total = subtotal - discount, amount due = total -
    # wallet credit (what the payment method owes), then what it has paid. A negative total
    # (a prorated downgrade) went back to the wallet.
    discount = "Discount" if coupon is None else f"Discount ({coupon.name})"
    credit = "Wallet credit applied"
    if invoice.wallet_credit_applied < 0:
        credit = "Credited to the wallet"
    totals = [
        ("Subtotal", invoice.subtotal, ""),
        (discount, -invoice.discount, ""),
        ("Total", invoice.total, ' class="total"'),
        (credit, -invoice.wallet_credit_applied, ""),
        ("Amount due", invoice.amount_due, ' class="due"'),
        ("Amount paid", invoice.amount_paid, ""),
    ]
    total_rows = "".join(
        f'<tr{cls}><th scope="row">{esc(label)}</th>'
        f'<td class="num">{_money(amount, currency)}</td></tr>'
        for label, amount, cls in totals
    )
    fact_rows = "".join(f"<dt>{esc(name)}</dt><dd>{esc(value)}</dd>" for name, value in facts)
    return (
        '<header class="invoice-head">'
        f'<p class="issuer">{esc(org_name)}</p>'
        f"<h1>Invoice {esc(number)}</h1>"
        f'<p class="status status-{esc(invoice.status.lower())}">{esc(invoice.status)}</p>'
        "</header>"
        f'<dl class="facts">{fact_rows}</dl>'
        '<section class="billed"><h2>Billed to</h2>'
        f"<p>{'<br>'.join(billed)}</p></section>"
        '<table class="lines"><caption>Lines</caption><thead><tr>'
        '<th scope="col">Description</th><th scope="col">Period</th>'
        '<th scope="col" class="num">Quantity</th><th scope="col" class="num">Amount</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
        f'<table class="totals"><tbody>{total_rows}</tbody></table>'
        '<p class="screen-only hint">To keep a copy, print this page or save it as a PDF '
        "from your browser.</p>"
    )


def _not_found() -> Response:
    body = (
        "<h1>Invoice not found</h1>"
        '<p class="notice">No invoice has this address. Check the link you were sent.</p>'
    )
    return _page("Invoice not found", body, 404)


def _page(title: str, body: str, status: int) -> Response:
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title>"
        '<link rel="stylesheet" href="/static/invoices/invoice.css">'
        f"</head><body><main>{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=HEADERS)
