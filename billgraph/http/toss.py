"""The browser's side of a Toss Payments top-up: billgraph's payment page with Toss's widget,
and the two redirects Toss sends the customer back with.

- GET /checkout/toss/{orderId}: the widget (Toss's script, our static file reading data
  attributes; no inline script) under a policy that allows only this server and Toss.
- GET /checkout/toss/success?paymentKey&orderId&amount: nothing is charged until billgraph
  confirms, and the query string is in the customer's hands: an amount that is not the
  session's is refused before Toss is asked anything. A confirmed payment goes through the
  webhook pipeline (one inbox row per Toss state, one credit per session), so a reload, or a
  webhook racing the redirect, credits once.
- GET /checkout/toss/fail?code&message&orderId: the attempt's error is recorded on the session
  (it stays payable) and the customer goes back to the cancelUrl.

A SUBSCRIPTION session (billing.collect) registers a card for auto-pay instead, on the same
page address (its customerKey, a random UUID, in place of the orderId):
- the page asks Toss for a billing authorization (requestBillingAuth);
- GET /checkout/toss/billing/success?customerKey&authKey: a customerKey that names no open
  SUBSCRIPTION session is refused before Toss is asked anything; otherwise the billing key is
  issued server-side, stored encrypted, made the subscription's payment method and charged
  for its open invoice (credit first), and the customer goes on to the successUrl (or, when
  that first charge is declined, sees so: the card stays saved, the subscription INCOMPLETE).
  A reload finds the session COMPLETE and issues nothing again;
- GET /checkout/toss/billing/fail?customerKey&code&message: the error is recorded on the
  session (it stays OPEN) and the customer goes back to the cancelUrl.

The orderId in these addresses is the session's secret (unguessable, as the sandbox's session
id is); logs name the session by billgraph's id, never by Toss's keys.
"""

import html
import re

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from billgraph.adapters import toss
from billgraph.adapters.base import EventKind, PaymentError, Provider
from billgraph.adapters.toss import TossProvider
from billgraph.billing import collect
from billgraph.checkout import repository, webhooks
from billgraph.checkout import service as checkout
from billgraph.checkout.providers import Providers
from billgraph.core.errors import ConflictError, NotFoundError, ProviderError
from billgraph.core.unit import unit_of_work
from billgraph.currencies import format_amount
from billgraph.db.engine import Database
from billgraph.db.models import CheckoutSession
from billgraph.logs import get_logger

log = get_logger("billgraph.http.toss")

SCRIPT_ORIGIN = "https://js.tosspayments.com"
WIDGET_SCRIPT = f"{SCRIPT_ORIGIN}/v2/standard"
TOSS_ORIGINS = "https://*.tosspayments.com"  # the widget's frames and the API it calls
PAYMENT_KEY = re.compile(r"[\x21-\x7e]{1,200}")  # printable ASCII, as Toss's keys are
AMOUNT = re.compile(r"[0-9]{1,16}")
TOSS_CODE = re.compile(r"[A-Z0-9_]{1,64}")
CANCELED_BY_CUSTOMER = "PAY_PROCESS_CANCELED"  # nothing failed: no error to record
UNVERIFIED = "The payment could not be verified, and nothing was charged."
UNREGISTERED = "The card could not be registered, and nothing was charged."


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")  # type: ignore[no-any-return]


class TossRoutes:
    def __init__(self, database: Database, providers: Providers) -> None:
        self.database = database
        self.providers = providers

    async def page(self, request: Request) -> Response:
        """GET /checkout/toss/{order_id}: the session's payment page."""
        order_id = request.path_params["order_id"]
        row = await self._session(order_id)
        if row is None:
            log.info("toss checkout page not found", request_id=_request_id(request))
            return _not_found()
        state = checkout.effective_status(row)
        log.info(
            "toss checkout page",
            checkout_session_id=row.id,
            status=state.value,
            request_id=_request_id(request),
        )
        subscribing = row.mode == checkout.CheckoutMode.SUBSCRIPTION
        if state is checkout.CheckoutStatus.COMPLETE and subscribing:
            return _registered(row, 200)
        if state is checkout.CheckoutStatus.COMPLETE:
            body = _notice("This checkout session is paid.") + _link(_success_url(row), "Continue")
            return _page("Checkout paid", _amount_line(row) + body, 200)
        if state is not checkout.CheckoutStatus.OPEN:
            return _closed(row, state, 200)
        try:
            adapter = self.providers.toss()
        except ProviderError:
            return _unavailable("Toss Payments is not available on this gateway.")
        if subscribing:
            return _billing_page(row, adapter)
        async with self.database.sessions() as session:
            customer_key = await repository.provider_customer_id(
                session, row.customer_id, Provider.TOSS.value
            )
        return _widget_page(row, adapter, customer_key)

    async def success(self, request: Request) -> Response:
        """GET /checkout/toss/success: verify, confirm at Toss, credit once, redirect."""
        request_id = _request_id(request)
        query = request.query_params
        payment_key, order_id = query.get("paymentKey", ""), query.get("orderId", "")
        if not (PAYMENT_KEY.fullmatch(payment_key) and toss.ORDER_ID.fullmatch(order_id)):
            log.warning("toss redirect refused", reason="malformed", request_id=request_id)
            return _page("Payment not verified", _notice(UNVERIFIED), 400)
        row = await self._top_up(order_id)
        if row is None:
            return _not_found()
        if row.status == checkout.CheckoutStatus.COMPLETE:  # a reload: confirmed already
            return _redirect(_success_url(row))
        amount = query.get("amount", "")
        if not AMOUNT.fullmatch(amount) or int(amount) != row.amount or row.currency != "KRW":
            log.warning(
                "toss redirect refused",
                reason="amount_mismatch",
                checkout_session_id=row.id,
                request_id=request_id,
            )
            return _page("Payment not verified", _notice(UNVERIFIED), 400)
        state = checkout.effective_status(row)
        if state is not checkout.CheckoutStatus.OPEN:
            return _closed(row, state, 409)  # not confirmed: Toss charges nothing
        return await self._confirm(row, payment_key, request_id)

    async def fail(self, request: Request) -> Response:
        """GET /checkout/toss/fail: record the failed attempt, back to the cancelUrl."""
        request_id = _request_id(request)
        query = request.query_params
        code, order_id = query.get("code", ""), query.get("orderId", "")
        if not (TOSS_CODE.fullmatch(code) and toss.ORDER_ID.fullmatch(order_id)):
            log.warning("toss fail redirect refused", reason="malformed", request_id=request_id)
            return _page("Payment not completed", _notice("The payment was not completed."), 400)
        row = await self._top_up(order_id)
        if row is None:
            return _not_found()
        if code != CANCELED_BY_CUSTOMER:
            error = toss.payment_error(code, query.get("message", "")[:500] or None)
            async with unit_of_work(self.database) as unit:
                await checkout.record_payment_error(unit, Provider.TOSS, order_id, error)
        log.info(
            "toss payment failed", code=code, checkout_session_id=row.id, request_id=request_id
        )
        return _redirect(row.cancel_url)

    async def billing_success(self, request: Request) -> Response:
        """GET /checkout/toss/billing/success: issue the billing key, save and attach it once."""
        request_id = _request_id(request)
        query = request.query_params
        customer_key, auth_key = query.get("customerKey", ""), query.get("authKey", "")
        if not (toss.ORDER_ID.fullmatch(customer_key) and PAYMENT_KEY.fullmatch(auth_key)):
            log.warning("toss billing redirect refused", reason="malformed", request_id=request_id)
            return _page("Card not registered", _notice(UNREGISTERED), 400)
        row = await collect.subscription_session(self.database, Provider.TOSS, customer_key)
        if row is None:
            log.warning("toss billing redirect refused", reason="unknown", request_id=request_id)
            return _not_found()
        if row.status == checkout.CheckoutStatus.COMPLETE:  # a reload: issued already
            return _redirect(_success_url(row))
        try:
            done = await collect.complete_with_billing_key(
                self.database, self.providers, customer_key, auth_key
            )
        except NotFoundError:
            return _not_found()
        except ConflictError:
            return _closed(row, checkout.effective_status(row), 409)
        except ProviderError as exc:
            unanswered = _not_answered(
                exc, row, request_id, "toss billing key not issued", "the card is not registered"
            )
            return unanswered or _redirect(row.cancel_url)  # the error is on the session
        log.info(
            "toss billing key registered",
            declined=done.declined is not None,
            replayed=done.replayed,
            checkout_session_id=row.id,
            request_id=request_id,
        )
        if done.declined is not None and not done.replayed:
            return _registered(done.session, 402)
        return _redirect(_success_url(done.session))

    async def billing_fail(self, request: Request) -> Response:
        """GET /checkout/toss/billing/fail: record the error, back to the cancelUrl."""
        request_id = _request_id(request)
        query = request.query_params
        code, customer_key = query.get("code", ""), query.get("customerKey", "")
        if not (TOSS_CODE.fullmatch(code) and toss.ORDER_ID.fullmatch(customer_key)):
            log.warning("toss billing fail refused", reason="malformed", request_id=request_id)
            return _page("Card not registered", _notice(UNREGISTERED), 400)
        row = await collect.subscription_session(self.database, Provider.TOSS, customer_key)
        if row is None:
            return _not_found()
        if code != CANCELED_BY_CUSTOMER:
            error = toss.payment_error(code, query.get("message", "")[:500] or None)
            async with unit_of_work(self.database) as unit:
                await checkout.record_payment_error(unit, Provider.TOSS, customer_key, error)
        log.info(
            "toss billing authorization failed",
            code=code,
            checkout_session_id=row.id,
            request_id=request_id,
        )
        return _redirect(row.cancel_url)

    async def _confirm(
        self, row: CheckoutSession, payment_key: str, request_id: str | None
    ) -> Response:
        try:
            adapter = self.providers.toss()
            event = await adapter.confirm(payment_key, row.provider_session_id, row.amount)
        except ProviderError as exc:
            return await self._refused(row, exc, request_id)
        try:
            outcome = await webhooks.handle(self.database, event)
        except webhooks.WebhookRefused as exc:
            log.error(
                "toss payment confirmed but not credited",
                code=exc.code,
                checkout_session_id=row.id,
                request_id=request_id,
            )
            return _page(
                "Payment not completed", _notice("The payment could not be completed."), 409
            )
        log.info(
            "toss payment confirmed",
            outcome=outcome.value,
            checkout_session_id=row.id,
            request_id=request_id,
        )
        if event.kind is EventKind.PAID:
            return _redirect(_success_url(row))
        if event.kind in (EventKind.PAYMENT_FAILED, EventKind.FAILED, EventKind.EXPIRED):
            return _redirect(row.cancel_url)
        # Accepted but not paid yet (a virtual account awaiting its deposit): the webhook
        # brings the payment.
        return _page(
            "Payment in progress",
            _amount_line(row)
            + _notice("Your payment is being processed: the wallet is credited once it is paid.")
            + _link(_success_url(row), "Continue"),
            202,
        )

    async def _refused(
        self, row: CheckoutSession, exc: ProviderError, request_id: str | None
    ) -> Response:
        unanswered = _not_answered(
            exc, row, request_id, "toss confirm refused", "nothing was credited"
        )
        if unanswered is not None:
            return unanswered
        error = PaymentError(exc.code, exc.message, exc.decline_code)
        async with unit_of_work(self.database) as unit:
            await checkout.record_payment_error(unit, Provider.TOSS, row.provider_session_id, error)
        return _redirect(row.cancel_url)

    async def _top_up(self, order_id: str) -> CheckoutSession | None:
        """A TOP_UP session: nothing is paid through a SUBSCRIPTION session's orderId."""
        row = await self._session(order_id)
        return row if row is not None and row.mode == checkout.CheckoutMode.TOP_UP else None

    async def _session(self, order_id: str) -> CheckoutSession | None:
        if not toss.ORDER_ID.fullmatch(order_id):
            return None
        async with self.database.sessions() as session:
            return await repository.session_by_provider_id(session, Provider.TOSS.value, order_id)


def _widget_page(row: CheckoutSession, adapter: TossProvider, customer_key: str | None) -> Response:
    base = adapter.public_url
    data = {
        "client-key": adapter.client_key,
        "customer-key": customer_key or "",
        "order-id": row.provider_session_id,
        "order-name": f"Wallet top-up ({row.currency})",
        "amount": str(row.amount),
        "currency": row.currency,
        "success-url": f"{base}/checkout/toss/success",
        "fail-url": f"{base}/checkout/toss/fail",
    }
    attributes = " ".join(f'data-{name}="{html.escape(value)}"' for name, value in data.items())
    error = row.last_payment_error_message
    body = (
        _amount_line(row)
        + (f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "")
        + f'<div id="toss-checkout" {attributes}>'
        '<div id="payment-method"></div><div id="agreement"></div></div>'
        '<button id="pay" type="button" disabled>Pay</button>'
        '<p id="toss-error" class="error" role="alert" hidden></p>'
        + _link(row.cancel_url, "Cancel and go back")
    )
    scripts = (
        f'<script src="{WIDGET_SCRIPT}" defer></script>'
        '<script src="/static/toss/checkout.js" defer></script>'
    )
    return _page("Pay with Toss Payments", body, 200, scripts=scripts, widget=True)


def _billing_page(row: CheckoutSession, adapter: TossProvider) -> Response:
    base = adapter.public_url
    key = row.provider_session_id
    data = {
        "client-key": adapter.client_key,
        "customer-key": key,
        "success-url": f"{base}/checkout/toss/billing/success",
        "fail-url": f"{base}/checkout/toss/billing/fail?customerKey={key}",
    }
    attributes = " ".join(f'data-{name}="{html.escape(value)}"' for name, value in data.items())
    error = row.last_payment_error_message
    charge = (
        "The card is registered for your subscription's payments and pays this amount now."
        if row.amount
        else "The card is registered for your subscription's payments; nothing is charged now."
    )
    body = (
        _amount_line(row)
        + _notice(charge)
        + (f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "")
        + f'<div id="toss-billing" {attributes}></div>'
        '<button id="register" type="button" disabled>Register card</button>'
        '<p id="toss-error" class="error" role="alert" hidden></p>'
        + _link(row.cancel_url, "Cancel and go back")
    )
    scripts = (
        f'<script src="{WIDGET_SCRIPT}" defer></script>'
        '<script src="/static/toss/billing.js" defer></script>'
    )
    return _page("Register a card with Toss Payments", body, 200, scripts=scripts, widget=True)


def _registered(row: CheckoutSession, status: int) -> Response:
    """A SUBSCRIPTION session that saved its card: and whether the first charge was declined."""
    body = _notice("Your card is registered as the subscription's payment method.")
    if row.last_payment_error_message:
        body += (
            '<p class="error" role="alert">The payment was declined: '
            f"{html.escape(row.last_payment_error_message)}</p>"
        )
    return _page("Card registered", body + _link(_success_url(row), "Continue"), status)


def _success_url(row: CheckoutSession) -> str:
    return row.success_url.replace("{CHECKOUT_SESSION_ID}", row.provider_session_id)


def _amount_line(row: CheckoutSession) -> str:
    return f'<p class="amount">{html.escape(format_amount(row.amount, row.currency))}</p>'


def _notice(text: str) -> str:
    return f'<p class="notice">{html.escape(text)}</p>'


def _link(url: str, text: str) -> str:
    return f'<p><a href="{html.escape(url)}">{html.escape(text)}</a></p>'


def _closed(row: CheckoutSession, state: checkout.CheckoutStatus, status: int) -> Response:
    text = f"This checkout session is {state.value.lower()}: it can no longer be paid."
    return _page("Checkout closed", _amount_line(row) + _notice(text), status)


def _not_found() -> Response:
    return _page("Checkout not found", _notice("No checkout session has this address."), 404)


def _not_answered(
    exc: ProviderError, row: CheckoutSession, request_id: str | None, event: str, yet: str
) -> Response | None:
    """Log a refused Toss call; the page for one Toss did not answer (or cannot be asked
    here), saying what has not happened `yet`; None for a refusal the session records."""
    log.warning(
        event,
        code=exc.code,
        decline_code=exc.decline_code,
        checkout_session_id=row.id,
        request_id=request_id,
    )
    if exc.code == "provider_unavailable":
        return _unavailable(
            f"Toss Payments did not answer, and {yet} yet. Try again in a moment: reload this page."
        )
    if exc.code == "provider_not_configured":
        return _unavailable("Toss Payments is not available on this gateway.")
    return None


def _unavailable(text: str) -> Response:
    return _page("Try again", _notice(text), 503, extra={"retry-after": "5"})


def policy(widget: bool) -> str:
    """Nothing but this server; the widget page adds Toss's script, frames and API."""
    script = f"script-src 'self' {SCRIPT_ORIGIN}; " if widget else ""
    toss_sources = (
        f"frame-src {TOSS_ORIGINS}; connect-src 'self' {TOSS_ORIGINS}; " if widget else ""
    )
    return (
        "default-src 'none'; "
        + script
        + toss_sources
        + "style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )


def _headers(widget: bool) -> dict[str, str]:
    return {
        "content-security-policy": policy(widget),
        "cache-control": "no-store",
        # The success address carries the paymentKey: no Referer takes it anywhere.
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
    }


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers=_headers(False))


def _page(
    title: str,
    body: str,
    status: int,
    *,
    scripts: str = "",
    widget: bool = False,
    extra: dict[str, str] | None = None,
) -> Response:
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        '<link rel="stylesheet" href="/static/toss/checkout.css">'
        f"{scripts}</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    headers = {**_headers(widget), **(extra or {})}
    return HTMLResponse(document, status_code=status, headers=headers)
