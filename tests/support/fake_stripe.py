"""A local fake of Stripe's API, so the `stripe` SDK's own code paths run in tests and no test
reaches the internet.

Why an in-repo fake: localstripe (PyPI) has no Checkout Sessions, and stripe-mock answers
fixed fixtures without state (a session it creates cannot then be paid, expired or refunded).
This one is a small Starlette app served by uvicorn on a free 127.0.0.1 port, in a thread of
its own, that keeps state as Stripe does, as far as billgraph uses Stripe:

- the wire: form-encoded bodies with bracket keys (`line_items[0][price_data][currency]`),
  `Authorization: Bearer sk_...` (a wrong key is Stripe's 401), JSON objects shaped after
  Stripe's own examples (tests/fixtures/stripe/fixtures3.json), unknown parameters refused,
  and Stripe's error body `{"error": {"type", "code", "decline_code", "message", "param"}}`
  with its statuses (400 invalid_request_error and idempotency_error, 401, 402 card_error,
  404 resource_missing, 429, 500 api_error);
- idempotency: the same `Idempotency-Key` with the same parameters replays the first answer
  (with `Idempotent-Replayed: true`), with other parameters is a 400 idempotency_error. As at
  Stripe, only requests that began executing are remembered (a refused parameter is not);
- POST /v1/customers, POST /v1/checkout/sessions (+ /expire), POST /v1/refunds, and GET of
  each object; a hosted page at the session's `url` (it only names the session: tests pay
  through `pay`);
- what happens outside the API, as Python methods (the test controls): a customer pays at the
  hosted page with a test card (`pay`; 4242... pays, 4000000000009995 insufficient_funds and
  4000000000000069 expired_card decline and leave the session open), with a delayed payment
  method (`pay_delayed`, then `settle_delayed`), the session expires (`expire`), someone
  refunds in the dashboard (`refund_from_dashboard`). Each emits the events Stripe would
  (checkout.session.completed, ...async_payment_succeeded|failed, ...expired, charge.refunded
  with the Charge's cumulative amount_refunded), kept in `events`, and signed on delivery as
  Stripe signs: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(whsec, "<t>.<body>")>`;
- faults: `fail_next(n, status=...)` answers the next n API requests with an error before
  they execute (a transient failure in front of the API, so nothing is remembered for their
  idempotency key), `stall_next(n, seconds)` holds them past a client's timeout first.
"""

import asyncio
import copy
import hashlib
import hmac
import json
import re
import secrets
import socket
import string
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import stripe
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tests.support.fake_stripe_billing import FakeStripeBilling

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stripe" / "fixtures3.json"
TEMPLATES: dict[str, dict[str, Any]] = json.loads(FIXTURES.read_text())["resources"]
API_VERSION = stripe.api_version
DOCS = "https://stripe.com/docs/error-codes/"

MIN_EXPIRY_SECONDS = 30 * 60
MAX_EXPIRY_SECONDS = 24 * 60 * 60
MAX_AMOUNT = 99_999_999  # Stripe takes at most 8 digits in the smallest unit
MINIMUM_AMOUNTS = {"usd": 50, "eur": 50, "gbp": 30, "jpy": 50}
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")

# Test cards as at Stripe: None pays, a dict is the decline (code, decline_code, message).
PAYS = "4242424242424242"
THREE_D_SECURE = "4000002500003155"
CARDS: dict[str, dict[str, str] | None] = {
    PAYS: None,
    THREE_D_SECURE: None,  # pays once the customer authenticates
    "4000000000000002": {
        "code": "card_declined",
        "decline_code": "generic_decline",
        "message": "Your card was declined.",
    },
    "4000000000009995": {
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
    },
    "4000000000000069": {
        "code": "expired_card",
        "decline_code": "expired_card",
        "message": "Your card has expired.",
    },
}
AUTHENTICATION_FAILED = {
    "code": "payment_intent_authentication_failure",
    "message": "We are unable to authenticate your payment method.",
}
INCORRECT_NUMBER = {"code": "incorrect_number", "message": "Your card number is incorrect."}

CUSTOMER_PARAMS = {"email", "name", "metadata", "description", "phone", "address", "expand"}
SESSION_PARAMS = {
    "mode",
    "line_items",
    "customer",
    "customer_email",
    "client_reference_id",
    "metadata",
    "success_url",
    "cancel_url",
    "expires_at",
    "payment_method_types",
    "locale",
    "submit_type",
    "ui_mode",
    "subscription_data",
    "expand",
}
LINE_ITEM_PARAMS = {"price", "price_data", "quantity"}
PRICE_DATA_PARAMS = {
    "currency",
    "unit_amount",
    "product",
    "product_data",
    "tax_behavior",
    "recurring",
}
PRODUCT_DATA_PARAMS = {"name", "description", "images", "metadata"}
REFUND_PARAMS = {"payment_intent", "charge", "amount", "reason", "metadata", "expand"}


class StripeFailure(Exception):
    """An answer in Stripe's error shape."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        decline_code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error: dict[str, Any] = {"type": type_, "message": message}
        for key, value in (("code", code), ("decline_code", decline_code), ("param", param)):
            if value is not None:
                self.error[key] = value
        if code is not None:
            self.error["doc_url"] = DOCS + code


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeFailure:
    return StripeFailure(400, "invalid_request_error", message, code=code, param=param)


def missing(param: str) -> StripeFailure:
    return invalid(f"Missing required param: {param}.", param, "parameter_missing")


def no_such(kind: str, object_id: str, param: str, status: int = 400) -> StripeFailure:
    return StripeFailure(
        status,
        "invalid_request_error",
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param=param,
    )


@dataclass
class Received:
    """One API request as the fake got it: `params` decoded from the form, values as sent
    (strings)."""

    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    stripe_version: str | None
    status: int = 0
    replayed: bool = False


@dataclass
class StoredEvent:
    """An event the fake emitted: `body` is what Stripe would POST (its JSON, pretty-printed
    as Stripe's are); it is signed when delivered."""

    id: str
    type: str
    body: bytes
    object_id: str

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class _Fault:
    status: int = 0
    stall: float = 0.0
    error: dict[str, Any] = field(default_factory=dict)
    path: str | None = None  # only requests to this path (None: any)


@dataclass
class _Remembered:
    fingerprint: str
    status: int
    body: bytes


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The Stripe-Signature header Stripe sends with `body` at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def random_id(prefix: str, length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def decode_form(body: bytes) -> dict[str, Any]:
    """Stripe's form encoding: `a[b][0][c]=v` is {"a": {"b": [{"c": "v"}]}}."""
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise invalid("The request body could not be decoded.") from None
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
        if match is None:
            raise invalid(f"Invalid parameter name: {key}", key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise invalid(f"Invalid hash: {key}", key)
            node = child
        node[parts[-1]] = value
    return _lists(root)  # type: ignore[no-any-return]


def _lists(node: Any) -> Any:
    """Hashes keyed 0, 1, 2, ... are the arrays they encode."""
    if not isinstance(node, dict):
        return node
    items = {k: _lists(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def _integer(value: Any, param: str, minimum: int = 0) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?\d{1,18}", value):
        raise invalid(f"Invalid integer: {value}", param)
    number = int(value)
    if number < minimum:
        raise invalid(f"This value must be greater than or equal to {minimum}.", param)
    return number


def _text(value: Any, param: str, max_length: int = 5000) -> str:
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {value!r}", param)
    if len(value) > max_length:
        raise invalid(
            f"Invalid string: {value[:20]}...; must be at most {max_length} characters", param
        )
    return value


def _known(params: dict[str, Any], allowed: set[str], prefix: str = "") -> None:
    for name in params:
        if name not in allowed:
            full = f"{prefix}[{name}]" if prefix else name
            raise invalid(f"Received unknown parameter: {full}", full)


def _hash(value: Any, param: str) -> dict[str, Any]:
    if value == "":  # Stripe's way of unsetting a hash
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid object: {param} must be a hash", param)
    return value


def _metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    """Stripe's metadata rules: at most 50 keys, keys of 40 and values of 500 characters."""
    if value is None:
        return {}
    metadata = _hash(value, param)
    if len(metadata) > 50:
        raise invalid("You can specify up to 50 keys in metadata.", param)
    for key, item in metadata.items():
        if len(key) > 40:
            raise invalid(
                f"Metadata keys can have up to 40 characters, but you passed in {key!r}.",
                f"{param}[{key}]",
            )
        if not isinstance(item, str) or len(item) > 500:
            raise invalid("Metadata values can have up to 500 characters.", f"{param}[{key}]")
    return dict(metadata)


def _url(value: Any, param: str) -> str:
    url = _text(value, param)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid("Not a valid URL", param, "url_invalid")
    return url


def _template(kind: str, **fields: Any) -> dict[str, Any]:
    obj = copy.deepcopy(TEMPLATES[kind])
    obj.update(fields)
    return obj


class FakeStripe(FakeStripeBilling):
    """The fake's state and its app (its billing: tests/support/fake_stripe_billing.py). Handlers and the test controls share the state under a
    lock (the server runs in its own thread)."""

    def __init__(self, secret_key: str, webhook_secret: str) -> None:
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        self.url = ""
        self.customers: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.events: list[StoredEvent] = []
        self.received: list[Received] = []
        self.next_refund_status = "succeeded"
        self._remembered: dict[tuple[str, str], _Remembered] = {}
        self._faults: deque[_Fault] = deque()
        self._lock = threading.RLock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._init_billing()
        self.app = Starlette(
            routes=[
                Route("/c/pay/{session_id}", self._hosted_page, methods=["GET"]),
                Route("/{path:path}", self._api, methods=["GET", "POST", "DELETE"]),
            ]
        )

    # -- running ------------------------------------------------------------------------

    def start(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=5
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Stripe server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)

    # -- faults -------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        type_: str | None = None,
        code: str | None = None,
        decline_code: str | None = None,
        message: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next `count` API requests (to `path` only, if given) with this error,
        before they execute."""
        default_type, default_message = {
            402: ("card_error", "Your card was declined."),
            403: ("invalid_request_error", "The provided key does not have access."),
            429: (
                "invalid_request_error",
                "Too many requests hit the API too quickly. We recommend an exponential "
                "backoff of your requests.",
            ),
        }.get(status, ("api_error", "Sorry, something went wrong. We've already been notified."))
        failure = StripeFailure(
            status,
            type_ or default_type,
            message or default_message,
            code=code or ("rate_limit" if status == 429 else None),
            decline_code=decline_code,
        )
        with self._lock:
            self._faults.extend(
                _Fault(status=status, error=failure.error, path=path) for _ in range(count)
            )

    def stall_next(self, count: int = 1, seconds: float = 1.0, path: str | None = None) -> None:
        """Hold the next `count` API requests for `seconds` before they execute (past the
        client's timeout, the client gave up: the request still runs, as at Stripe)."""
        with self._lock:
            self._faults.extend(_Fault(stall=seconds, path=path) for _ in range(count))

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path is None or fault.path == path:
                    self._faults.remove(fault)
                    return fault
        return None

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self.next_refund_status = "succeeded"

    # -- what tests look at -------------------------------------------------------------

    def mark(self) -> int:
        """A bookmark in `received`, for `since`."""
        with self._lock:
            return len(self.received)

    def since(self, mark: int, path: str | None = None) -> list[Received]:
        """The API requests after `mark` (to `path` only, if given)."""
        with self._lock:
            return [r for r in self.received[mark:] if path is None or r.path == path]

    def events_for(self, object_id: str, type_: str | None = None) -> list[StoredEvent]:
        """The events about one object (a session, or a charge's payment intent)."""
        with self._lock:
            return [
                e
                for e in self.events
                if e.object_id == object_id and (type_ is None or e.type == type_)
            ]

    def events_after(self, mark: int) -> list[StoredEvent]:
        """The events emitted after `mark` (a len(events) taken before), in order."""
        with self._lock:
            return list(self.events[mark:])

    def event(self, object_id: str, type_: str) -> StoredEvent:
        found = self.events_for(object_id, type_)
        assert len(found) == 1, (object_id, type_, [e.type for e in self.events_for(object_id)])
        return found[0]

    def sign(
        self, body: bytes, timestamp: int | None = None, secret: str | None = None
    ) -> dict[str, str]:
        """The headers Stripe delivers `body` with (signed now, unless told otherwise)."""
        t = int(time.time()) if timestamp is None else timestamp
        return {
            "content-type": "application/json; charset=utf-8",
            "stripe-signature": signature(secret or self.webhook_secret, body, t),
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }

    # -- the outside world: the hosted page, the dashboard ------------------------------

    def pay(
        self, session_id: str, card: str = PAYS, *, authenticate: bool = True
    ) -> dict[str, Any]:
        """The customer pays on the hosted page. Returns the PaymentIntent; a declined card
        leaves the session open and the decline in the PaymentIntent's last_payment_error."""
        with self._lock:
            session = self._open_session(session_id)
            if session["mode"] == "subscription":
                return self._start_subscription(session, card)
            intent = self._intent_for(session, "card")
            decline = CARDS.get(card, INCORRECT_NUMBER)
            if card == THREE_D_SECURE and not authenticate:
                decline = AUTHENTICATION_FAILED
            if decline is not None:
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {"type": "card_error", **decline}
                return copy.deepcopy(intent)
            self._succeed(session, intent)
            self._emit("checkout.session.completed", session)
            return copy.deepcopy(intent)

    def pay_delayed(self, session_id: str) -> dict[str, Any]:
        """The customer pays with a delayed method (a bank debit): checkout completes unpaid,
        the PaymentIntent is processing until `settle_delayed`."""
        with self._lock:
            session = self._open_session(session_id)
            intent = self._intent_for(session, "us_bank_account")
            intent["status"] = "processing"
            session["status"] = "complete"
            session["payment_status"] = "unpaid"
            session["customer_details"] = self._customer_details(session)
            self._emit("checkout.session.completed", session)
            return copy.deepcopy(intent)

    def settle_delayed(self, session_id: str, *, succeed: bool) -> None:
        """The delayed payment clears (async_payment_succeeded) or bounces (_failed)."""
        with self._lock:
            session = self._session(session_id)
            intent = self.payment_intents[session["payment_intent"]]
            assert intent["status"] == "processing", intent["status"]
            if succeed:
                self._succeed(session, intent)
                self._emit("checkout.session.async_payment_succeeded", session)
                return
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {
                "type": "invalid_request_error",
                "code": "payment_method_provider_decline",
                "message": "The customer's bank could not process this payment.",
            }
            self._emit("checkout.session.async_payment_failed", session)

    def expire(self, session_id: str) -> dict[str, Any]:
        """The session expires (its expires_at passed, or it was expired through the API)."""
        with self._lock:
            return self._expire(self._session(session_id))

    def refund_from_dashboard(
        self, payment_intent: str, amount: int | None = None
    ) -> dict[str, Any]:
        """A refund made in Stripe's dashboard, outside billgraph: charge.refunded follows."""
        with self._lock:
            intent = self.payment_intents.get(payment_intent)
            if intent is None:
                raise KeyError(payment_intent)
            return self._refund(intent, amount, None, {})

    def emit(self, type_: str, object_id: str, **changes: Any) -> StoredEvent:
        """An event about a session as it is now, with `changes` to the snapshot: for orders
        and contents Stripe itself would not produce (a duplicate delivery of a stale state,
        a wrong amount), still signed as Stripe signs."""
        with self._lock:
            return self._emit(type_, {**self._session(object_id), **changes})

    # -- the API ------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        body = await request.body()
        fault = self._take_fault(request.url.path)
        if fault is not None and fault.stall:
            await asyncio.sleep(fault.stall)
        record = Received(
            request.method,
            request.url.path,
            {},
            request.headers.get("idempotency-key"),
            request.headers.get("stripe-version"),
        )
        try:
            record.params = decode_form(body if request.method == "POST" else b"")
            if request.method == "GET":
                record.params = decode_form(request.url.query.encode())
        except StripeFailure as failure:
            return self._answer(record, failure.status, {"error": failure.error})
        if fault is not None and fault.status:
            return self._answer(record, fault.status, {"error": fault.error})
        try:
            self._authenticate(request.headers.get("authorization"))
        except StripeFailure as failure:
            return self._answer(record, failure.status, {"error": failure.error})
        with self._lock:
            return self._execute(record)

    def _execute(self, record: Received) -> Response:
        key = record.idempotency_key if record.method == "POST" else None
        fingerprint = json.dumps([record.path, record.params], sort_keys=True)
        if key is not None:
            if len(key) > 255:
                failure = invalid("Idempotency-Key must be at most 255 characters.")
                return self._answer(record, 400, {"error": failure.error})
            remembered = self._remembered.get((self.secret_key, key))
            if remembered is not None:
                if remembered.fingerprint != fingerprint:
                    failure = StripeFailure(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request.",
                    )
                    return self._answer(record, 400, {"error": failure.error})
                record.replayed = True
                return self._answer(record, remembered.status, remembered.body)
        try:
            status, answer = 200, self._route(record.method, record.path, record.params)
        except StripeFailure as failure:
            status, answer = failure.status, {"error": failure.error}
        # As at Stripe: what began executing is remembered, a refused parameter is not.
        if key is not None and (status == 200 or status == 402):
            encoded = json.dumps(answer, indent=2).encode()
            self._remembered[(self.secret_key, key)] = _Remembered(fingerprint, status, encoded)
        return self._answer(record, status, answer)

    def _answer(self, record: Received, status: int, answer: dict[str, Any] | bytes) -> Response:
        record.status = status
        with self._lock:
            self.received.append(record)
        headers = {"request-id": random_id("req_", 14), "stripe-version": API_VERSION}
        if record.idempotency_key is not None and record.method == "POST":
            headers["idempotency-key"] = record.idempotency_key
        if record.replayed:
            headers["idempotent-replayed"] = "true"
        if status >= 500:
            headers["stripe-should-retry"] = "true"
        content = answer if isinstance(answer, bytes) else json.dumps(answer, indent=2).encode()
        return Response(content, status, headers, media_type="application/json")

    def _authenticate(self, header: str | None) -> None:
        if not header:
            raise StripeFailure(
                401,
                "invalid_request_error",
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        scheme, _, key = header.partition(" ")
        if scheme != "Bearer" or not hmac.compare_digest(key.encode(), self.secret_key.encode()):
            masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "***"
            raise StripeFailure(401, "invalid_request_error", f"Invalid API Key provided: {masked}")

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        match method, parts:
            case "POST", ["v1", "customers"]:
                return self._create_customer(params)
            case "GET", ["v1", "customers", customer_id]:
                return self._get(self.customers, "customer", customer_id)
            case "POST", ["v1", "checkout", "sessions"]:
                return self._create_session(params)
            case "GET", ["v1", "checkout", "sessions", session_id]:
                return self._get(self.sessions, "checkout.session", session_id)
            case "POST", ["v1", "checkout", "sessions", session_id, "expire"]:
                _known(params, {"expand"})
                session = self.sessions.get(session_id)
                if session is None:
                    raise no_such("checkout.session", session_id, "session", 404)
                return self._expire(session)
            case "GET", ["v1", "payment_intents", intent_id]:
                return self._get(self.payment_intents, "payment_intent", intent_id)
            case "GET", ["v1", "charges", charge_id]:
                return self._get(self.charges, "charge", charge_id)
            case "POST", ["v1", "refunds"]:
                return self._create_refund(params)
            case "GET", ["v1", "refunds", refund_id]:
                return self._get(self.refunds, "refund", refund_id)
        found = self._billing_route(method, parts, params)
        if found is not None:
            return found
        raise StripeFailure(
            404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})."
        )

    def _get(self, table: dict[str, dict[str, Any]], kind: str, object_id: str) -> dict[str, Any]:
        obj = table.get(object_id)
        if obj is None:
            raise no_such(kind, object_id, "id", 404)
        return copy.deepcopy(obj)

    def _create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        _known(params, CUSTOMER_PARAMS)
        email = params.get("email")
        if email is not None and (len(_text(email, "email", 512)) > 0 and "@" not in email):
            raise invalid(f"Invalid email address: {email}", "email", "email_invalid")
        customer = _template(
            "customer",
            id=random_id("cus_", 14),
            created=int(time.time()),
            email=email or None,
            name=_text(params["name"], "name", 256) if params.get("name") else None,
            description=params.get("description") or None,
            metadata=_metadata(params.get("metadata")),
            discount=None,
            currency=None,
            invoice_prefix=secrets.token_hex(4).upper(),
            livemode=False,
        )
        self.customers[customer["id"]] = customer
        return copy.deepcopy(customer)

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        _known(params, SESSION_PARAMS)
        if "mode" not in params:
            raise missing("mode")
        if params["mode"] not in ("payment", "setup", "subscription"):
            raise invalid("Invalid mode: must be one of payment, setup, or subscription", "mode")
        mode = params["mode"]
        if mode == "setup":
            raise invalid("This fake Stripe takes mode=payment or subscription only.", "mode")
        currency, amount = self._line_items(params.get("line_items"))
        recurring = any("recurring" in item["price_data"] for item in params["line_items"])
        if mode == "payment" and recurring:
            raise invalid(
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
                "line_items",
            )
        if mode == "payment" and "subscription_data" in params:
            raise invalid(
                "You can not pass `subscription_data` in `payment` mode.", "subscription_data"
            )
        pending = None
        if mode == "subscription":
            pending = self._subscription_session(params, params["line_items"])
            if pending[1] is not None:
                amount = 0  # nothing is due until the trial ends
        now = int(time.time())
        expires_at = now + MAX_EXPIRY_SECONDS
        if "expires_at" in params:
            expires_at = _integer(params["expires_at"], "expires_at")
            if expires_at < now + MIN_EXPIRY_SECONDS - 5:  # a little slack for clocks
                raise invalid(
                    "The `expires_at` timestamp must be at least 30 minutes from Checkout "
                    "Session creation.",
                    "expires_at",
                )
            if expires_at > now + MAX_EXPIRY_SECONDS:
                raise invalid(
                    "The `expires_at` timestamp must be less than 24 hours from Checkout "
                    "Session creation.",
                    "expires_at",
                )
        customer = params.get("customer")
        if customer is not None and customer not in self.customers:
            raise no_such("customer", customer, "customer")
        reference = params.get("client_reference_id")
        session_id = random_id("cs_test_a1", 56)
        session = _template(
            "checkout.session",
            id=session_id,
            url=f"{self.url}/c/pay/{session_id}",
            mode=mode,
            subscription=None,
            invoice=None,
            status="open",
            payment_status="unpaid",
            # Since API version 2022-08-01 the PaymentIntent is made when the customer pays.
            payment_intent=None,
            amount_subtotal=amount,
            amount_total=amount,
            currency=currency,
            customer=customer,
            customer_email=params.get("customer_email"),
            customer_details=None,
            client_reference_id=None
            if reference is None
            else _text(reference, "client_reference_id", 200),
            metadata=_metadata(params.get("metadata")),
            success_url=None
            if "success_url" not in params
            else _url(params["success_url"], "success_url"),
            cancel_url=None
            if "cancel_url" not in params
            else _url(params["cancel_url"], "cancel_url"),
            expires_at=expires_at,
            created=now,
            livemode=False,
            shipping_cost=None,
            shipping_address_collection=None,
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            currency_conversion=None,
            collected_information=None,
            after_expiration=None,
            invoice_creation={
                "enabled": False,
                "invoice_data": TEMPLATES["checkout.session"]["invoice_creation"]["invoice_data"],
            },
            discounts=[],
        )
        self.sessions[session_id] = session
        if pending is not None:
            self._pending[session_id] = pending
        return copy.deepcopy(session)

    def _line_items(self, items: Any) -> tuple[str, int]:
        """The currency and total of `line_items` (with price_data: the fake has no Prices)."""
        if items is None:
            raise invalid("`line_items` is required in `payment` mode.", "line_items")
        if not isinstance(items, list) or not items:
            raise invalid("Invalid array", "line_items")
        currencies, total = set(), 0
        for index, item in enumerate(items):
            param = f"line_items[{index}]"
            item = _hash(item, param)
            _known(item, LINE_ITEM_PARAMS, param)
            if "price" in item:
                raise no_such("price", str(item["price"]), f"{param}[price]")
            if "price_data" not in item:
                raise invalid(f"You must specify either `price` or `price_data` in {param}.", param)
            price = _hash(item["price_data"], f"{param}[price_data]")
            _known(price, PRICE_DATA_PARAMS, f"{param}[price_data]")
            for name in ("currency", "unit_amount", "product_data"):
                if name not in price:
                    raise missing(f"{param}[price_data][{name}]")
            product = _hash(price["product_data"], f"{param}[price_data][product_data]")
            _known(product, PRODUCT_DATA_PARAMS, f"{param}[price_data][product_data]")
            if not product.get("name"):
                raise missing(f"{param}[price_data][product_data][name]")
            currency = _text(price["currency"], f"{param}[price_data][currency]").lower()
            if not re.fullmatch(r"[a-z]{3}", currency):
                raise invalid(f"Invalid currency: {currency}", f"{param}[price_data][currency]")
            currencies.add(currency)
            if "quantity" not in item:
                raise missing(f"{param}[quantity]")
            quantity = _integer(item["quantity"], f"{param}[quantity]", 1)
            total += _integer(price["unit_amount"], f"{param}[price_data][unit_amount]") * quantity
        if len(currencies) > 1:
            raise invalid("All line items must be in the same currency.", "line_items")
        currency = currencies.pop()
        if total > MAX_AMOUNT:
            raise invalid(
                f"The Checkout Session's total amount due must be no more than {MAX_AMOUNT}.",
                "line_items",
                "amount_too_large",
            )
        if total < MINIMUM_AMOUNTS.get(currency, 1):
            raise invalid(
                "The Checkout Session's total amount due must add up to at least "
                f"{MINIMUM_AMOUNTS.get(currency, 1)} {currency}.",
                "line_items",
                "amount_too_small",
            )
        return currency, total

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        _known(params, REFUND_PARAMS)
        intent_id, charge_id = params.get("payment_intent"), params.get("charge")
        if intent_id is None and charge_id is None:
            raise invalid(
                "One of the following params should be provided for this request: payment_intent or charge."
            )
        if intent_id is not None:
            intent = self.payment_intents.get(intent_id)
            if intent is None:
                raise no_such("payment_intent", intent_id, "payment_intent")
        else:
            charge = self.charges.get(charge_id)  # type: ignore[arg-type]
            if charge is None:
                raise no_such("charge", str(charge_id), "charge")
            intent = self.payment_intents[charge["payment_intent"]]
        amount = None if "amount" not in params else _integer(params["amount"], "amount", 1)
        reason = params.get("reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise invalid(
                "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
                "reason",
            )
        return self._refund(intent, amount, reason, _metadata(params.get("metadata")))

    # -- state changes --------------------------------------------------------------------

    def _session(self, session_id: str) -> dict[str, Any]:
        session = self.sessions.get(session_id)
        if session is None:
            raise KeyError(session_id)
        return session

    def _open_session(self, session_id: str) -> dict[str, Any]:
        session = self._session(session_id)
        if session["status"] != "open":
            raise ValueError(f"session {session_id} is {session['status']}: it cannot be paid")
        return session

    def _intent_for(self, session: dict[str, Any], method_type: str) -> dict[str, Any]:
        """The session's PaymentIntent, made when the customer first tries to pay."""
        if session["payment_intent"] is not None:
            intent = self.payment_intents[session["payment_intent"]]
            intent["payment_method_types"] = [method_type]
            return intent
        intent = _template(
            "payment_intent",
            id=random_id("pi_", 24),
            amount=session["amount_total"],
            amount_received=0,
            currency=session["currency"],
            customer=session["customer"],
            created=int(time.time()),
            canceled_at=None,
            status="requires_payment_method",
            last_payment_error=None,
            latest_charge=None,
            next_action=None,
            processing=None,
            transfer_data=None,
            client_secret=None,
            metadata={},
            payment_method_types=[method_type],
            livemode=False,
        )
        intent["client_secret"] = f"{intent['id']}_secret_{secrets.token_hex(12)}"
        self.payment_intents[intent["id"]] = intent
        session["payment_intent"] = intent["id"]
        return intent

    def _customer_details(self, session: dict[str, Any]) -> dict[str, Any]:
        customer = self.customers.get(session["customer"] or "")
        details: dict[str, Any] = copy.deepcopy(TEMPLATES["checkout.session"]["customer_details"])
        details["email"] = (customer or {}).get("email") or session.get("customer_email")
        details["name"] = (customer or {}).get("name")
        return details

    def _succeed(self, session: dict[str, Any], intent: dict[str, Any]) -> None:
        charge = _template(
            "charge",
            id=random_id("ch_", 24),
            amount=intent["amount"],
            amount_captured=intent["amount"],
            amount_refunded=0,
            captured=True,
            paid=True,
            refunded=False,
            status="succeeded",
            currency=intent["currency"],
            customer=intent["customer"],
            payment_intent=intent["id"],
            created=int(time.time()),
            description=None,
            balance_transaction=random_id("txn_", 24),
            source=None,
            transfer_data=None,
            livemode=False,
        )
        charge["refunds"] = {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/charges/{charge['id']}/refunds",
        }
        self.charges[charge["id"]] = charge
        intent.update(
            status="succeeded",
            amount_received=intent["amount"],
            latest_charge=charge["id"],
            last_payment_error=None,
        )
        session["status"] = "complete"
        session["payment_status"] = "paid"
        session["customer_details"] = self._customer_details(session)

    def _expire(self, session: dict[str, Any]) -> dict[str, Any]:
        if session["status"] != "open":
            raise invalid('Only Checkout Sessions with a status in ["open"] can be expired.')
        session["status"] = "expired"
        self._emit("checkout.session.expired", session)
        return copy.deepcopy(session)

    def _refund(
        self,
        intent: dict[str, Any],
        amount: int | None,
        reason: str | None,
        metadata: dict[str, str],
    ) -> dict[str, Any]:
        if intent["status"] != "succeeded" or intent["latest_charge"] is None:
            raise invalid(
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                "payment_intent",
            )
        charge = self.charges[intent["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        if left == 0:
            raise invalid(
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = left if amount is None else amount
        if amount > left:
            raise invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                "amount",
                "amount_too_large",
            )
        refund = _template(
            "refund",
            id=random_id("re_", 24),
            amount=amount,
            charge=charge["id"],
            payment_intent=intent["id"],
            currency=charge["currency"],
            created=int(time.time()),
            reason=reason,
            metadata=metadata,
            status=self.next_refund_status,
            balance_transaction=random_id("txn_", 24),
        )
        self.refunds[refund["id"]] = refund
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        charge["refunds"]["data"].insert(0, copy.deepcopy(refund))
        self._emit("charge.refunded", charge, previous, object_id=intent["id"])
        return copy.deepcopy(refund)

    def _emit(
        self,
        type_: str,
        obj: dict[str, Any],
        previous: dict[str, Any] | None = None,
        *,
        object_id: str | None = None,
    ) -> StoredEvent:
        event = _template(
            "event",
            id=random_id("evt_", 24),
            api_version=API_VERSION,
            created=int(time.time()),
            data={"object": copy.deepcopy(obj)},
            livemode=False,
            pending_webhooks=1,
            request={"id": None, "idempotency_key": None},
            type=type_,
        )
        if previous is not None:
            event["data"]["previous_attributes"] = previous
        stored = StoredEvent(
            event["id"], type_, json.dumps(event, indent=2).encode(), object_id or obj["id"]
        )
        self.events.append(stored)
        return stored

    # -- the hosted page ------------------------------------------------------------------

    async def _hosted_page(self, request: Request) -> Response:
        with self._lock:
            session = self.sessions.get(request.path_params["session_id"])
        if session is None:
            return HTMLResponse("<h1>Something went wrong</h1>", 404)
        return HTMLResponse(
            f"<h1>Fake Stripe Checkout</h1><p>{session['amount_total']} "
            f"{session['currency']}: {session['status']}</p>"
        )


@contextmanager
def running(secret_key: str, webhook_secret: str) -> Iterator[FakeStripe]:
    """A fake Stripe served for the duration of the block."""
    fake = FakeStripe(secret_key, webhook_secret)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


async def deliver(
    client: httpx.AsyncClient,
    fake: FakeStripe,
    event: StoredEvent,
    *,
    timestamp: int | None = None,
    secret: str | None = None,
    body: bytes | None = None,
) -> httpx.Response:
    """POST `event` to billgraph's /webhooks/stripe as Stripe delivers it (signed now, with
    the endpoint's secret, unless told otherwise; `body` sends other bytes under the
    signature of the event's)."""
    headers = fake.sign(event.body, timestamp, secret)
    return await client.post(
        "/webhooks/stripe", content=event.body if body is None else body, headers=headers
    )
