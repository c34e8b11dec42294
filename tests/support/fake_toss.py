"""A fake Toss Payments API: a Starlette app under uvicorn on a free 127.0.0.1 port (its own
thread and event loop), answering with Toss's shapes (docs.tosspayments.com/reference):

- HTTP Basic auth with the secret key and an empty password, else 401 UNAUTHORIZED_KEY;
- POST /v1/payments/confirm: the payment the "widget" started (start_payment), checked against
  the orderId and amount it started with (400 INVALID_REQUEST otherwise), declined as the test
  cards say (the payment is then ABORTED, with its failure), DONE otherwise; a second confirm
  is 400 ALREADY_PROCESSED_PAYMENT;
- GET /v1/payments/{paymentKey} (404 NOT_FOUND_PAYMENT), POST /v1/payments/{paymentKey}/cancel
  (partial and full: balanceAmount, cancels[], PARTIAL_CANCELED / CANCELED);
- POST /v1/billing/authorizations/issue and POST /v1/billing/{billingKey} (a Payment of type
  BILLING), the test cards deciding each charge;
- Idempotency-Key on any POST: the first answer is replayed (a 5xx is not kept, so a retry
  after one is processed);
- faults: the next N matching requests answer 500 FAILED_INTERNAL_SYSTEM_PROCESSING (or any
  status and code), or stall for a while before being processed (as a slow Toss does: the
  client has given up, the payment is confirmed all the same).

Tests play the customer and the merchant's dashboard with start_payment, authorize_billing and
dashboard_cancel, and read what billgraph asked with calls().
"""

import asyncio
import base64
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SECRET_KEY = "test_sk_fake_billgraph_0123456789"
CLIENT_KEY = "test_gck_fake_billgraph_0123456789"
KST = timezone(timedelta(hours=9))

SUCCESS_CARD = "4300000000000001"
INSUFFICIENT_CARD = "4300000000000002"
LIMIT_CARD = "4300000000000003"
SUSPENDED_CARD = "4300000000000004"
# What each test card does when it is charged: None pays; otherwise Toss's error answer.
TEST_CARDS: dict[str, tuple[int, str, str] | None] = {
    SUCCESS_CARD: None,
    INSUFFICIENT_CARD: (
        403,
        "REJECT_CARD_PAYMENT",
        "The payment failed: the card's limit is exceeded or its balance is insufficient.",
    ),
    LIMIT_CARD: (400, "EXCEED_MAX_AMOUNT", "The transaction exceeds the card's amount limit."),
    SUSPENDED_CARD: (400, "INVALID_STOPPED_CARD", "This card is suspended."),
}
INTERNAL = (500, "FAILED_INTERNAL_SYSTEM_PROCESSING", "Internal processing failed. Try again.")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Fault:
    remaining: int
    path: str | None  # a path prefix, or any path
    stall_seconds: float = 0.0
    answer: tuple[int, str, str] | None = None  # (status, code, message); None: process


@dataclass
class _Started:
    order_id: str
    amount: int
    card: str


@dataclass
class _Billing:
    customer_key: str
    card: str
    used: bool = False


def _now() -> str:
    return datetime.now(KST).isoformat(timespec="seconds")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _masked(card: str) -> str:
    return card[:8] + "****" + card[12:15] + "*"


@dataclass
class FakeToss:
    secret_key: str = SECRET_KEY
    url: str = ""
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    _started: dict[str, _Started] = field(default_factory=dict)
    _auth_keys: dict[str, _Billing] = field(default_factory=dict)
    _billing_keys: dict[str, _Billing] = field(default_factory=dict)
    _replays: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    _faults: list[Fault] = field(default_factory=list)
    _requests: list[Recorded] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- controls: what the customer, the dashboard and the test do ------------------------

    def start_payment(
        self,
        order_id: str,
        amount: int,
        card: str = SUCCESS_CARD,
        order_name: str = "Wallet top-up (KRW)",
    ) -> str:
        """The widget: the customer paid with `card`; Toss waits for the confirm. Returns the
        paymentKey the success redirect carries."""
        key = "tgen_" + secrets.token_urlsafe(18)
        with self._lock:
            self._started[key] = _Started(order_id, amount, card.replace("-", ""))
            self.payments[key] = self._payment(key, order_id, order_name, amount, card, "NORMAL")
        return key

    def authorize_billing(self, customer_key: str, card: str = SUCCESS_CARD) -> str:
        """The widget's card registration: returns the authKey of the success redirect."""
        auth_key = "bln_" + secrets.token_urlsafe(16)
        with self._lock:
            self._auth_keys[auth_key] = _Billing(customer_key, card.replace("-", ""))
        return auth_key

    def dashboard_cancel(
        self, payment_key: str, amount: int | None = None, reason: str = "Dashboard"
    ) -> dict[str, Any]:
        """A cancel made in Toss's dashboard (no API call from billgraph)."""
        with self._lock:
            status, body = self._cancel(
                payment_key, {"cancelReason": reason, "cancelAmount": amount}
            )
        assert status == 200, body
        return body

    def set_status(self, payment_key: str, status: str, **fields: Any) -> None:
        with self._lock:
            self.payments[payment_key].update(status=status, **fields)

    def fail_next(
        self,
        count: int = 1,
        *,
        path: str | None = None,
        status: int = INTERNAL[0],
        code: str = INTERNAL[1],
        message: str = INTERNAL[2],
    ) -> None:
        """The next `count` requests (to paths starting with `path`) answer this error."""
        with self._lock:
            self._faults.append(Fault(count, path, answer=(status, code, message)))

    def stall_next(self, count: int = 1, *, seconds: float, path: str | None = None) -> None:
        """The next `count` requests wait `seconds` before being processed."""
        with self._lock:
            self._faults.append(Fault(count, path, stall_seconds=seconds))

    def reset_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def calls(self, method: str | None = None, path: str = "") -> list[Recorded]:
        """The requests received, oldest first, by method and path prefix."""
        with self._lock:
            return [
                r
                for r in self._requests
                if (method is None or r.method == method) and r.path.startswith(path)
            ]

    def confirms(self, payment_key: str) -> int:
        """How many confirm requests named this payment."""
        return sum(
            1
            for r in self.calls("POST", "/v1/payments/confirm")
            if isinstance(r.body, dict) and r.body.get("paymentKey") == payment_key
        )

    def webhook(self, payment_key: str, **overrides: Any) -> bytes:
        """A PAYMENT_STATUS_CHANGED delivery for the payment; `overrides` make it lie."""
        with self._lock:
            data = {**self.payments[payment_key], **overrides}
        event = {"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": _now(), "data": data}
        return json.dumps(event).encode()

    # --- the API ------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/payments/confirm", self._endpoint(self._confirm), methods=["POST"]),
                Route("/v1/payments/{key}", self._endpoint(self._get), methods=["GET"]),
                Route(
                    "/v1/payments/{key}/cancel",
                    self._endpoint(self._cancel_request),
                    methods=["POST"],
                ),
                Route(
                    "/v1/billing/authorizations/issue",
                    self._endpoint(self._issue),
                    methods=["POST"],
                ),
                Route("/v1/billing/{key}", self._endpoint(self._charge), methods=["POST"]),
            ]
        )

    def _endpoint(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            with self._lock:
                self._requests.append(
                    Recorded(request.method, request.url.path, dict(request.headers), body)
                )
                fault = self._take_fault(request.url.path)
            if fault is not None and fault.stall_seconds:
                await asyncio.sleep(fault.stall_seconds)
            if fault is not None and fault.answer is not None:
                return _error(*fault.answer)
            if request.headers.get("authorization") != self._authorization():
                return _error(401, "UNAUTHORIZED_KEY", "Unauthorized secret key or client key.")
            replay_key = request.headers.get("idempotency-key")
            with self._lock:
                if replay_key and (request.url.path, replay_key) in self._replays:
                    status, content = self._replays[(request.url.path, replay_key)]
                    return Response(content, status, media_type="application/json")
                status, answer = handler(request.path_params, body)
                content = json.dumps(answer).encode()
                if replay_key and status < 500:
                    self._replays[(request.url.path, replay_key)] = (status, content)
            return Response(content, status, media_type="application/json")

        return endpoint

    def _authorization(self) -> str:
        return "Basic " + base64.b64encode(f"{self.secret_key}:".encode()).decode()

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.remaining > 0 and (fault.path is None or path.startswith(fault.path)):
                fault.remaining -= 1
                return fault
        return None

    def _payment(
        self, key: str, order_id: str, order_name: str, amount: int, card: str, kind: str
    ) -> dict[str, Any]:
        return {
            "mId": "tosspayments",
            "version": "2022-11-16",
            "paymentKey": key,
            "type": kind,
            "orderId": order_id,
            "orderName": order_name,
            "currency": "KRW",
            "method": "카드",
            "status": "IN_PROGRESS",
            "requestedAt": _now(),
            "approvedAt": None,
            "totalAmount": amount,
            "balanceAmount": amount,
            "suppliedAmount": amount - amount // 11,
            "vat": amount // 11,
            "taxFreeAmount": 0,
            "lastTransactionKey": None,
            "card": {
                "issuerCode": "61",
                "acquirerCode": "31",
                "number": _masked(card.replace("-", "")),
                "cardType": "신용",
                "ownerType": "개인",
                "approveNo": "00000000",
            },
            "cancels": None,
            "failure": None,
            "isPartialCancelable": True,
            "country": "KR",
        }

    def _confirm(self, _: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            return 400, {"code": "INVALID_REQUEST", "message": "The bad request."}
        key, order_id, amount = body.get("paymentKey"), body.get("orderId"), body.get("amount")
        started = self._started.get(key) if isinstance(key, str) else None
        if started is None or not isinstance(key, str):
            return 404, {
                "code": "NOT_FOUND_PAYMENT_SESSION",
                "message": "The payment session expired or does not exist.",
            }
        payment = self.payments[key]
        if payment["status"] != "IN_PROGRESS":
            return 400, {
                "code": "ALREADY_PROCESSED_PAYMENT",
                "message": "This is a payment that has already been processed.",
            }
        if order_id != started.order_id or amount != started.amount or isinstance(amount, bool):
            return 400, {
                "code": "INVALID_REQUEST",
                "message": "The orderId or amount is not the payment's.",
            }
        return self._settle(payment, TEST_CARDS.get(started.card))

    def _settle(
        self, payment: dict[str, Any], decline: tuple[int, str, str] | None
    ) -> tuple[int, dict[str, Any]]:
        if decline is not None:
            status, code, message = decline
            payment.update(status="ABORTED", failure={"code": code, "message": message})
            return status, {"code": code, "message": message}
        payment.update(
            status="DONE",
            approvedAt=_now(),
            lastTransactionKey="txrd_" + secrets.token_hex(12),
        )
        return 200, dict(payment)

    def _get(self, params: dict[str, str], _: Any) -> tuple[int, dict[str, Any]]:
        payment = self.payments.get(params["key"])
        if payment is None:
            return 404, {"code": "NOT_FOUND_PAYMENT", "message": "The payment does not exist."}
        return 200, dict(payment)

    def _cancel_request(self, params: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        return self._cancel(params["key"], body)

    def _cancel(self, key: str, body: Any) -> tuple[int, dict[str, Any]]:
        payment = self.payments.get(key)
        if payment is None:
            return 404, {"code": "NOT_FOUND_PAYMENT", "message": "The payment does not exist."}
        if not isinstance(body, dict) or not isinstance(body.get("cancelReason"), str):
            return 400, {"code": "INVALID_REQUEST", "message": "cancelReason is required."}
        if payment["status"] == "CANCELED":
            return 400, {
                "code": "ALREADY_CANCELED_PAYMENT",
                "message": "The payment is already canceled.",
            }
        if payment["status"] not in ("DONE", "PARTIAL_CANCELED"):
            return 403, {
                "code": "NOT_CANCELABLE_PAYMENT",
                "message": "This payment cannot be canceled.",
            }
        balance = payment["balanceAmount"]
        amount = body.get("cancelAmount")
        amount = balance if amount is None else amount
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= balance:
            return 403, {
                "code": "NOT_CANCELABLE_AMOUNT",
                "message": "This amount cannot be canceled.",
            }
        transaction = "txcn_" + secrets.token_hex(12)
        cancel = {
            "cancelAmount": amount,
            "cancelReason": body["cancelReason"],
            "taxFreeAmount": 0,
            "refundableAmount": balance - amount,
            "canceledAt": _now(),
            "transactionKey": transaction,
            "cancelStatus": "DONE",
        }
        payment.update(
            balanceAmount=balance - amount,
            status="CANCELED" if amount == balance else "PARTIAL_CANCELED",
            cancels=[*(payment["cancels"] or []), cancel],
            lastTransactionKey=transaction,
        )
        return 200, dict(payment)

    def _issue(self, _: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        auth = self._auth_keys.get(str(body.get("authKey"))) if isinstance(body, dict) else None
        if auth is None or auth.used:
            return 400, {"code": "INVALID_REQUEST", "message": "The authKey is not valid."}
        if body.get("customerKey") != auth.customer_key:
            return 400, {
                "code": "NOT_MATCHES_CUSTOMER_KEY",
                "message": "The customerKey is not the one the card was registered with.",
            }
        auth.used = True
        # Toss's billing keys are base64 (with '=' padding): the path must be escaped.
        billing_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        self._billing_keys[billing_key] = _Billing(auth.customer_key, auth.card)
        return 200, {
            "mId": "tosspayments",
            "customerKey": auth.customer_key,
            "authenticatedAt": _now(),
            "method": "카드",
            "billingKey": billing_key,
            "cardCompany": "현대",
            "cardNumber": _masked(auth.card),
            "card": {
                "issuerCode": "61",
                "acquirerCode": "31",
                "number": _masked(auth.card),
                "cardType": "신용",
                "ownerType": "개인",
            },
        }

    def _charge(self, params: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        billing = self._billing_keys.get(params["key"])
        if billing is None:
            return 404, {"code": "NOT_FOUND", "message": "The information does not exist."}
        if not isinstance(body, dict) or body.get("customerKey") != billing.customer_key:
            return 400, {
                "code": "NOT_MATCHES_CUSTOMER_KEY",
                "message": "The customerKey is not the billing key's.",
            }
        order_id, amount = body.get("orderId"), body.get("amount")
        if not isinstance(order_id, str) or not isinstance(amount, int) or amount <= 0:
            return 400, {"code": "INVALID_REQUEST", "message": "The bad request."}
        if any(p["orderId"] == order_id for p in self.payments.values()):
            return 400, {
                "code": "DUPLICATED_ORDER_ID",
                "message": "This orderId was already approved or canceled.",
            }
        key = "tbil_" + secrets.token_urlsafe(18)
        payment = self._payment(
            key, order_id, str(body.get("orderName", "")), amount, billing.card, "BILLING"
        )
        decline = TEST_CARDS.get(billing.card)
        status, answer = self._settle(payment, decline)
        self.payments[key] = payment
        return status, answer


@dataclass
class RunningFakeToss:
    toss: FakeToss
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def start(secret_key: str = SECRET_KEY) -> RunningFakeToss:
    """Serve a fresh FakeToss on a free port in a thread of its own."""
    toss = FakeToss(secret_key=secret_key)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        toss.app(),
        log_level="warning",
        access_log=False,  # the access log would print billing keys (they are in a path)
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fake-toss", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake Toss server did not start")
        time.sleep(0.01)
    toss.url = f"http://127.0.0.1:{port}"
    return RunningFakeToss(toss, server, thread)


@pytest.fixture(scope="session")
def fake_toss_server() -> Iterator[FakeToss]:
    running = start()
    yield running.toss
    running.stop()


@pytest.fixture
def fake_toss(fake_toss_server: FakeToss) -> Iterator[FakeToss]:
    """The session's fake Toss, with no fault left over from another test."""
    fake_toss_server.reset_faults()
    yield fake_toss_server
    fake_toss_server.reset_faults()
