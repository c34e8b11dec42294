"""The checkout routes: webhooks (`POST /webhooks/sandbox`) and the sandbox's hosted page
(`GET`/`POST /sandbox/checkout/{id}`).

A webhook's body is decoded by the bounded decoder (bodies.py) and verified by the provider's
adapter on its raw bytes; whatever is refused is a 4xx with a JSON error body carrying the
request id, and nothing is written. The hosted page is plain HTML with no script, its own
stylesheet and a self-only Content-Security-Policy; its address is the secret (an
unguessable session id), as at the providers. Paying there runs the signed event it emits
through the same pipeline as an outside delivery, before the browser is redirected.

A SUBSCRIPTION session's page saves the card instead (billing.collect): the card becomes the
subscription's payment method and pays its open invoice; no event, no wallet credit. Saved,
the session is COMPLETE even if that first charge is declined: the page then says so (402)
and links on to the successUrl, and the subscription stays INCOMPLETE with the failed attempt
on its invoice. A reload, or the form posted again, finds the session COMPLETE.
"""

import html
import time
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from billgraph.adapters import sandbox
from billgraph.adapters.base import PaymentError, Provider
from billgraph.billing import collect, stripe_mirror, toss_charges
from billgraph.checkout import repository, webhooks
from billgraph.checkout import service as checkout
from billgraph.checkout.providers import Providers
from billgraph.core.errors import BillingError, ProviderError
from billgraph.core.unit import unit_of_work
from billgraph.currencies import format_amount
from billgraph.db.engine import Database
from billgraph.db.models import CheckoutSession
from billgraph.http import bodies
from billgraph.http.errors import error_response
from billgraph.logs import get_logger

log = get_logger("billgraph.http.checkout")

MAX_FORM_BYTES = 4096
WEBHOOK_PROVIDERS = {provider.value.lower(): provider for provider in Provider}


def page_policy(row: CheckoutSession | None) -> str:
    """Nothing but this server, no script; forms may post here and (a redirect after
    paying) lead on to the session's successUrl."""
    form_action = "'self'"
    if row is not None:
        parts = urlsplit(row.success_url)
        if parts.hostname:
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            port = f":{parts.port}" if parts.port else ""
            form_action += f" {parts.scheme}://{host}{port}"
    return "; ".join(
        (
            "default-src 'none'",
            "style-src 'self'",
            "img-src 'self'",
            f"form-action {form_action}",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")  # type: ignore[no-any-return]


class CheckoutRoutes:
    def __init__(self, database: Database, providers: Providers) -> None:
        self.database = database
        self.providers = providers

    async def webhook(self, request: Request) -> Response:
        """POST /webhooks/{sandbox|stripe|toss}: an event verified by the provider's adapter,
        stored once, acted on once."""
        request_id = _request_id(request)
        name = request.path_params["provider"]
        provider = WEBHOOK_PROVIDERS.get(name)
        if provider is None:
            return error_response(404, "No such webhook endpoint.", "NOT_FOUND", request_id)
        body = await request.body()
        try:
            bodies.check_charset(request.headers.get("content-type"))
            payload = bodies.parse_json(body)
        except bodies.BadBody as exc:
            log.warning("webhook refused", provider=name, code="BAD_REQUEST", request_id=request_id)
            return error_response(400, str(exc), "BAD_REQUEST", request_id)
        try:
            if provider is Provider.STRIPE:  # its subscriptions and invoices are billing's
                outcome = await stripe_mirror.receive(
                    self.database, self.providers, body, payload, request.headers
                )
            elif provider is Provider.TOSS:  # its billing-key charges are billing's
                outcome = await toss_charges.receive(
                    self.database, self.providers, body, payload, request.headers
                )
            else:
                outcome = await webhooks.receive(
                    self.database, self.providers, provider, body, payload, request.headers
                )
        except webhooks.WebhookRefused as exc:
            log.warning("webhook refused", provider=name, code=exc.code, request_id=request_id)
            return error_response(exc.status, exc.message, exc.code, request_id)
        except ProviderError as exc:  # not configured here, or its API could not be reached
            log.warning("webhook refused", provider=name, code=exc.code, request_id=request_id)
            status = 404 if exc.code == "provider_not_configured" else 503
            return error_response(status, exc.message, exc.code.upper(), request_id)
        return JSONResponse({"received": True, "outcome": outcome.value})

    async def sandbox_page(self, request: Request) -> Response:
        session_id = request.path_params["session_id"]
        async with self.database.sessions() as session:
            row = await repository.session_by_provider_id(
                session, Provider.SANDBOX.value, session_id
            )
        if row is None:
            return _page(
                None, "Checkout not found", _notice("No checkout session has this address."), 404
            )
        if request.method == "GET":
            return self._checkout_page(row)
        form = await _form(request)
        if form is None:
            return self._checkout_page(row, "The form could not be read. Try again.", 400)
        status = checkout.effective_status(row)
        if status is not checkout.CheckoutStatus.OPEN:
            return self._checkout_page(row, status=409)
        card = "".join(ch for ch in form.get("card_number", "") if ch not in " -")
        if not card.isdigit() or not 12 <= len(card) <= 19:
            return self._checkout_page(row, "Enter a card number of 12 to 19 digits.", 400)
        subscribing = row.mode == checkout.CheckoutMode.SUBSCRIPTION
        outcome = sandbox.card_outcome(card)
        if outcome == sandbox.THREE_D_SECURE:
            answer = form.get("authentication")
            if answer is None:
                return self._authentication_page(row, card)
            outcome = None if answer == "complete" else sandbox.AUTHENTICATION_FAILED
        elif subscribing:  # saved, not paid here: a card that declines charges may be saved
            outcome = sandbox.can_save(card)
        if isinstance(outcome, PaymentError):
            async with unit_of_work(self.database) as unit:
                await checkout.record_payment_error(
                    unit, Provider.SANDBOX, row.provider_session_id, outcome
                )
            return self._checkout_page(row, outcome.message, 402)
        if subscribing:
            return await self._save_card(row, card)
        return await self._pay(request, row)

    async def _save_card(self, row: CheckoutSession, card: str) -> Response:
        try:
            done = await collect.complete_with_card(
                self.database, self.providers, row.provider_session_id, card
            )
        except BillingError as exc:  # canceled meanwhile, expired, a card it cannot save
            return self._checkout_page(row, exc.message, 409)
        if done.replayed:
            return self._checkout_page(done.session, status=409)
        if done.declined is not None:
            return self._checkout_page(done.session, status=402)
        target = row.success_url.replace("{CHECKOUT_SESSION_ID}", row.provider_session_id)
        return RedirectResponse(target, status_code=303, headers=_headers(row))

    async def _pay(self, request: Request, row: CheckoutSession) -> Response:
        adapter = await self.providers.sandbox()
        now = time.time()
        body = sandbox.completed_event(
            row.provider_session_id,
            amount=row.amount,
            currency=row.currency,
            client_reference_id=str(row.customer_id),
            metadata={"billgraph_checkout_session_id": str(row.id)},
            created=int(now),
        )
        try:
            await webhooks.receive(
                self.database,
                self.providers,
                Provider.SANDBOX,
                body,
                bodies.parse_json(body),
                adapter.signed_event(body, now),
                now=now,
            )
        except webhooks.WebhookRefused as exc:
            log.error(
                "sandbox payment not credited", code=exc.code, request_id=_request_id(request)
            )
            return self._checkout_page(row, "The payment could not be completed.", 409)
        target = row.success_url.replace("{CHECKOUT_SESSION_ID}", row.provider_session_id)
        return RedirectResponse(target, status_code=303, headers=_headers(row))

    def _checkout_page(
        self, row: CheckoutSession, error: str | None = None, status: int = 200
    ) -> Response:
        amount = html.escape(format_amount(row.amount, row.currency))
        state = checkout.effective_status(row)
        subscribing = row.mode == checkout.CheckoutMode.SUBSCRIPTION
        parts = [f'<p class="amount">{amount}</p>']
        if subscribing and state is checkout.CheckoutStatus.OPEN:
            parts.append(
                _notice(
                    "The card is saved as your subscription's payment method"
                    + (" and pays this amount now." if row.amount else "; nothing is charged now.")
                )
            )
        if subscribing and state is checkout.CheckoutStatus.COMPLETE:
            pass  # the outcome below says what happened
        elif error:
            parts.append(f'<p class="error" role="alert">{html.escape(error)}</p>')
        elif row.last_payment_error_message and state is checkout.CheckoutStatus.OPEN:
            parts.append(
                f'<p class="error" role="alert">{html.escape(row.last_payment_error_message)}</p>'
            )
        if state is checkout.CheckoutStatus.OPEN:
            button = ("Save card and pay" if row.amount else "Save card") if subscribing else "Pay"
            saved_cards = (
                "; 4000 0000 0000 0341 is saved, but every charge to it is declined"
                if subscribing
                else ""
            )
            parts.append(
                '<form method="post">'
                '<label for="card_number">Card number</label>'
                '<input id="card_number" name="card_number" type="text" inputmode="numeric" '
                'autocomplete="cc-number" required autofocus maxlength="23" '
                'placeholder="4242 4242 4242 4242">'
                f'<button type="submit">{button}</button>'
                "</form>"
                f'<p><a href="{html.escape(row.cancel_url)}">Cancel and go back</a></p>'
                '<p class="cards">Sandbox test cards: 4242 4242 4242 4242 pays; '
                "4000 0000 0000 9995 is declined (insufficient funds); 4000 0000 0000 0069 "
                f"is an expired card; 4000 0025 0000 3155 asks for 3-D Secure{saved_cards}.</p>"
            )
        elif state is checkout.CheckoutStatus.COMPLETE and subscribing:
            parts.append(_notice("Your card is saved as the subscription's payment method."))
            if row.last_payment_error_message:
                parts.append(
                    '<p class="error" role="alert">The payment was declined: '
                    f"{html.escape(row.last_payment_error_message)}</p>"
                )
            landing = row.success_url.replace("{CHECKOUT_SESSION_ID}", row.provider_session_id)
            parts.append(f'<p><a href="{html.escape(landing)}">Continue</a></p>')
        elif state is checkout.CheckoutStatus.COMPLETE:
            parts.append(_notice("This checkout session is paid."))
            parts.append(f'<p><a href="{html.escape(row.success_url)}">Continue</a></p>')
        else:
            parts.append(
                _notice(
                    f"This checkout session is {state.value.lower()}: it can no longer be paid."
                )
            )
        return _page(row, "Sandbox checkout", "".join(parts), status)

    def _authentication_page(self, row: CheckoutSession, card: str) -> Response:
        amount = html.escape(format_amount(row.amount, row.currency))
        body = (
            f'<p class="amount">{amount}</p>'
            '<p class="notice">Your bank asks you to confirm this payment (3-D Secure).</p>'
            '<form method="post">'
            f'<input type="hidden" name="card_number" value="{html.escape(card)}">'
            '<button type="submit" name="authentication" value="complete" autofocus>'
            "Complete authentication</button>"
            '<button type="submit" name="authentication" value="fail" class="secondary">'
            "Fail authentication</button>"
            "</form>"
        )
        return _page(row, "Authenticate your payment", body, 200)


async def _form(request: Request) -> dict[str, str] | None:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=10, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return None
    return {name: values[0] for name, values in fields.items() if values}


def _notice(text: str) -> str:
    return f'<p class="notice">{html.escape(text)}</p>'


def _headers(row: CheckoutSession | None) -> dict[str, str]:
    return {
        "content-security-policy": page_policy(row),
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
    }


def _page(row: CheckoutSession | None, title: str, body: str, status: int) -> Response:
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        '<link rel="stylesheet" href="/static/sandbox/checkout.css">'
        f"</head><body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=_headers(row))
