"""The fake Stripe's billing (a part of tests/support/fake_stripe.py's FakeStripe): Checkout
Sessions in `subscription` mode, the Subscriptions and Invoices they start, renewals and the
fake's simple dunning, cancellation, and the Customer Portal.

As at Stripe (API version of the SDK: periods on the subscription's items, an invoice's
subscription in `parent.subscription_details`, with the subscription's metadata there too):

- a subscription-mode session takes `line_items[][price_data]` with `recurring[interval]`
  (+ `interval_count`) and `subscription_data[metadata|trial_period_days]`; paying it with a
  test card (`pay`) saves the card, creates the Subscription (trialing, or incomplete then
  active) and its first Invoice (billing_reason subscription_create; $0 in a trial), and emits
  customer.subscription.created, invoice.created, invoice.finalized, invoice.paid,
  customer.subscription.updated (incomplete -> active) and checkout.session.completed;
- `renew` (or `POST /v1/test_helpers/fake/subscriptions/{id}/renew`): the period ends; a
  subscription set to cancel at period end is canceled (customer.subscription.deleted),
  otherwise the next period's invoice is charged to the saved card: paid (active) or
  payment_failed (past_due, next_payment_attempt in 3 days);
- `renew(..., draft=True)` stops at invoice.created with the invoice a draft, as Stripe leaves
  a renewal's invoice for about an hour when webhooks listen (POST /v1/invoiceitems adds a
  line to it, a negative one too); `finalize` goes on (finalized, charged, the subscription's
  status);
- `retry`: the open invoice's next attempt; after `invoice_attempts` failed attempts the
  subscription becomes `final_status` (unpaid, or canceled) with no next attempt;
- DELETE /v1/subscriptions/{id} cancels now; POST /v1/subscriptions/{id} sets
  cancel_at_period_end; GET of subscriptions and invoices; POST /v1/billing_portal/sessions;
- `subscribe_directly`: a subscription made outside billgraph (the dashboard, another app on
  the account), with no billgraph metadata.
"""

import calendar
import copy
import random
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from tests.support import fake_stripe as base  # import fake_stripe, which mixes this in

SUBSCRIPTION_DATA_PARAMS = {"metadata", "trial_period_days", "description"}
RECURRING_PARAMS = {"interval", "interval_count"}
CANCEL_PARAMS = {"invoice_now", "prorate", "cancellation_details", "expand"}
UPDATE_PARAMS = {"cancel_at_period_end", "metadata", "cancellation_details", "expand"}
PORTAL_PARAMS = {"customer", "return_url", "configuration", "locale", "expand"}
INVOICE_ITEM_PARAMS = {
    "customer",
    "invoice",
    "amount",
    "currency",
    "description",
    "metadata",
    "expand",
}
RETRY_DAYS = 3


def add_months(ts: int, months: int) -> int:
    """`ts` moved `months` on, its day kept where the month has it (Jan 31 -> Feb 28)."""
    moment = datetime.fromtimestamp(ts, UTC)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def scrambled(
    events: "list[base.StoredEvent]", *, repeat: int = 2, seed: int = 0
) -> "list[base.StoredEvent]":
    """`events`, each `repeat` times, in a shuffled (but reproducible) order: how Stripe may
    deliver them."""
    out = [event for event in events for _ in range(repeat)]
    random.Random(seed).shuffle(out)
    return out


class FakeStripeBilling:
    """Mixed into FakeStripe, whose state (`customers`, `sessions`, `_lock`, `_emit`, `url`)
    it shares."""

    customers: dict[str, dict[str, Any]]
    sessions: dict[str, dict[str, Any]]
    url: str
    _lock: Any
    _emit: Any
    _customer_details: Any

    def _init_billing(self) -> None:
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.portal_sessions: dict[str, dict[str, Any]] = {}
        # The card saved for each customer (what renewals charge).
        self.cards: dict[str, str] = {}
        # What a subscription-mode session will start: {session id: (prices, trial days, metadata)}.
        self._pending: dict[str, tuple[list[dict[str, Any]], int | None, dict[str, str]]] = {}
        self._invoice_counts: dict[str, int] = {}
        # Renewals held at their draft invoice: {invoice id: the subscription's previous state}.
        self._drafts: dict[str, dict[str, Any]] = {}
        self.invoice_attempts = 3
        self.final_status = "unpaid"

    # -- checkout -------------------------------------------------------------------------

    def _subscription_session(
        self, params: dict[str, Any], items: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], int | None, dict[str, str]]:
        """The prices, trial and metadata of a subscription-mode session's parameters."""
        prices = []
        for index, item in enumerate(items):
            param = f"line_items[{index}][price_data]"
            price = item["price_data"]
            if "recurring" not in price:
                raise base.invalid(
                    "You must specify at least one recurring price in `subscription` mode.",
                    "line_items",
                )
            recurring = base._hash(price["recurring"], f"{param}[recurring]")
            base._known(recurring, RECURRING_PARAMS, f"{param}[recurring]")
            if "interval" not in recurring:
                raise base.missing(f"{param}[recurring][interval]")
            interval = recurring["interval"]
            if interval not in ("day", "week", "month", "year"):
                raise base.invalid(
                    "Invalid interval: must be one of day, week, month, or year",
                    f"{param}[recurring][interval]",
                )
            if interval not in ("month", "year"):
                raise base.invalid("This fake Stripe bills month and year intervals only.", param)
            count = base._integer(
                recurring.get("interval_count", "1"), f"{param}[recurring][interval_count]", 1
            )
            prices.append(
                {
                    "currency": price["currency"].lower(),
                    "unit_amount": base._integer(price["unit_amount"], f"{param}[unit_amount]"),
                    "name": price["product_data"]["name"],
                    "interval": interval,
                    "interval_count": count,
                    "quantity": base._integer(
                        item["quantity"], f"line_items[{index}][quantity]", 1
                    ),
                }
            )
        data = base._hash(params.get("subscription_data", {}), "subscription_data")
        base._known(data, SUBSCRIPTION_DATA_PARAMS, "subscription_data")
        trial = None
        if "trial_period_days" in data:
            trial = base._integer(
                data["trial_period_days"], "subscription_data[trial_period_days]", 1
            )
            if trial > 730:
                raise base.invalid(
                    "The maximum number of trial period days is 730 (2 years).",
                    "subscription_data[trial_period_days]",
                )
        metadata = base._metadata(data.get("metadata"), "subscription_data[metadata]")
        return prices, trial, metadata

    def _start_subscription(self, session: dict[str, Any], card: str) -> dict[str, Any]:
        """The customer completes a subscription-mode session with `card`: a decline leaves
        it open (returned as the error), else the subscription starts."""
        decline = base.CARDS.get(card, base.INCORRECT_NUMBER)
        if decline is not None:
            return {"last_payment_error": {"type": "card_error", **decline}}
        prices, trial, metadata = self._pending[session["id"]]
        customer = session["customer"]
        if customer is None:
            customer = base.random_id("cus_", 14)
            self.customers[customer] = base._template(
                "customer",
                id=customer,
                created=int(time.time()),
                metadata={},
                livemode=False,
                email=session.get("customer_email"),
                invoice_prefix=secrets.token_hex(4).upper(),
            )
            session["customer"] = customer
        self.cards[customer] = card
        now = int(time.time())
        sub = self._new_subscription(customer, prices, metadata, now, trial)
        self._emit("customer.subscription.created", sub)
        invoice = self._new_invoice(sub, "subscription_create", now, free=trial is not None)
        paid = self._collect(invoice)
        assert paid  # the card paid at checkout
        if sub["status"] == "incomplete":
            sub["status"] = "active"
            self._emit("customer.subscription.updated", sub, {"status": "incomplete"})
        session.update(
            status="complete",
            payment_status="no_payment_required" if trial else "paid",
            subscription=sub["id"],
            invoice=invoice["id"],
            customer_details=self._customer_details(session),
        )
        self._emit("checkout.session.completed", session)
        return copy.deepcopy(sub)

    # -- subscriptions and invoices --------------------------------------------------------

    def _new_subscription(
        self,
        customer: str,
        prices: list[dict[str, Any]],
        metadata: dict[str, str],
        now: int,
        trial: int | None,
    ) -> dict[str, Any]:
        sub_id = base.random_id("sub_", 24)
        trial_end = now + trial * 86400 if trial else None
        end = trial_end or self._period_end(prices[0], now, 1)
        items = []
        for price in prices:
            item = copy.deepcopy(base._template("subscription")["items"]["data"][0])
            price_id, product = base.random_id("price_", 24), base.random_id("prod_", 14)
            item.update(
                id=base.random_id("si_", 14),
                created=now,
                metadata={},
                quantity=price["quantity"],
                subscription=sub_id,
                current_period_start=now,
                current_period_end=end,
            )
            item["price"].update(
                id=price_id,
                created=now,
                currency=price["currency"],
                product=product,
                unit_amount=price["unit_amount"],
                unit_amount_decimal=str(price["unit_amount"]),
                nickname=price["name"],
            )
            item["price"]["recurring"].update(
                interval=price["interval"], interval_count=price["interval_count"]
            )
            item["plan"].update(
                id=price_id,
                amount=price["unit_amount"],
                amount_decimal=str(price["unit_amount"]),
                billing_scheme="per_unit",
                created=now,
                currency=price["currency"],
                interval=price["interval"],
                interval_count=price["interval_count"],
                livemode=False,
                metadata={},
                nickname=price["name"],
                product=product,
                transform_usage=None,
            )
            items.append(item)
        sub = base._template(
            "subscription",
            id=sub_id,
            customer=customer,
            currency=prices[0]["currency"],
            status="trialing" if trial else "incomplete",
            created=now,
            start_date=now,
            billing_cycle_anchor=end if trial else now,
            billing_cycle_anchor_config=None,
            cancel_at=None,
            canceled_at=None,
            cancel_at_period_end=False,
            cancellation_details={"comment": None, "feedback": None, "reason": None},
            ended_at=None,
            trial_start=now if trial else None,
            trial_end=trial_end,
            metadata=dict(metadata),
            items={
                "object": "list",
                "data": items,
                "has_more": False,
                "url": f"/v1/subscription_items?subscription={sub_id}",
            },
            latest_invoice=None,
            default_payment_method=base.random_id("pm_", 24),
            discounts=[],
            livemode=False,
            next_pending_invoice_item_invoice=None,
            pause_collection=None,
            pending_invoice_item_interval=None,
            pending_setup_intent=None,
            pending_update=None,
            schedule=None,
            test_clock=None,
            transfer_data=None,
            description=None,
        )
        self.subscriptions[sub_id] = sub
        return sub

    @staticmethod
    def _period_end(recurring: dict[str, Any], anchor: int, periods: int) -> int:
        """The end of the `periods`-th period counted from `anchor` (its day kept)."""
        months = recurring["interval_count"] * (12 if recurring["interval"] == "year" else 1)
        return add_months(anchor, months * periods)

    def _new_invoice(
        self,
        sub: dict[str, Any],
        reason: str,
        now: int,
        *,
        free: bool = False,
        finalize: bool = True,
    ) -> dict[str, Any]:
        """The period's invoice, emitted as created (draft) then (unless held as a draft)
        finalized (open)."""
        invoice_id = base.random_id("in_", 24)
        lines = []
        for item in sub["items"]["data"]:
            price = item["price"]
            amount = 0 if free else price["unit_amount"] * item["quantity"]
            line = copy.deepcopy(base._template("invoice")["lines"]["data"][0])
            line.update(
                id=base.random_id("il_", 24),
                amount=amount,
                subtotal=amount,
                currency=price["currency"],
                description=(
                    f"Trial period for {price['nickname']}"
                    if free
                    else f"{item['quantity']} x {price['nickname']} "
                    f"(at {price['unit_amount']} {price['currency']} / {price['recurring']['interval']})"
                ),
                invoice=invoice_id,
                period={
                    "start": item["current_period_start"],
                    "end": item["current_period_end"],
                },
                quantity=item["quantity"],
                subscription=sub["id"],
                discountable=True,
                discounts=[],
                discount_amounts=[],
                metadata={},
                parent={
                    "type": "subscription_item_details",
                    "invoice_item_details": None,
                    "subscription_item_details": {
                        "invoice_item": None,
                        "proration": False,
                        "proration_details": {"credited_items": None},
                        "subscription": sub["id"],
                        "subscription_item": item["id"],
                    },
                },
                pricing={
                    "type": "price_details",
                    "price_details": {"price": price["id"], "product": price["product"]},
                    "unit_amount_decimal": str(price["unit_amount"]),
                },
            )
            lines.append(line)
        total = sum(line["amount"] for line in lines)
        customer = self.customers[sub["customer"]]
        invoice = base._template(
            "invoice",
            id=invoice_id,
            customer=sub["customer"],
            customer_email=customer.get("email"),
            customer_name=customer.get("name"),
            currency=sub["currency"],
            status="draft",
            billing_reason=reason,
            created=now,
            effective_at=None,
            due_date=None,
            period_start=now,
            period_end=now,
            amount_due=total,
            amount_paid=0,
            amount_remaining=total,
            amount_overpaid=0,
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
            attempt_count=0,
            attempted=False,
            auto_advance=True,
            number=None,
            hosted_invoice_url=None,
            invoice_pdf=None,
            next_payment_attempt=None,
            last_finalization_error=None,
            from_invoice=None,
            latest_revision=None,
            shipping_cost=None,
            metadata={},
            livemode=False,
            webhooks_delivered_at=None,
            status_transitions={
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            lines={
                "object": "list",
                "data": lines,
                "has_more": False,
                "url": f"/v1/invoices/{invoice_id}/lines",
            },
            parent={
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "metadata": dict(sub["metadata"]),
                    "subscription": sub["id"],
                },
            },
        )
        invoice.pop("subscription", None)  # not on invoices in this API version: see parent
        self.invoices[invoice_id] = invoice
        sub["latest_invoice"] = invoice_id
        self._emit("invoice.created", invoice)
        if finalize:
            self._finalize(invoice)
        return invoice

    def _finalize(self, invoice: dict[str, Any]) -> None:
        customer = self.customers[invoice["customer"]]
        now = int(time.time())
        count = self._invoice_counts.get(invoice["customer"], 0) + 1
        self._invoice_counts[invoice["customer"]] = count
        invoice.update(
            status="open",
            number=f"{customer.get('invoice_prefix') or 'FAKE'}-{count:04d}",
            effective_at=now,
            hosted_invoice_url=f"{self.url}/i/{invoice['id']}",
        )
        invoice["status_transitions"]["finalized_at"] = now
        self._emit("invoice.finalized", invoice)

    def _collect(self, invoice: dict[str, Any]) -> bool:
        """One attempt to charge the invoice to the customer's saved card (nothing to charge:
        paid at once). Emits invoice.paid or invoice.payment_failed."""
        now = int(time.time())
        if invoice["amount_due"] == 0:
            decline = None
        else:
            invoice["attempt_count"] += 1
            invoice["attempted"] = True
            decline = base.CARDS.get(self.cards.get(invoice["customer"], ""), base.INCORRECT_NUMBER)
        if decline is None:
            invoice.update(
                status="paid",
                amount_paid=invoice["amount_due"],
                amount_remaining=0,
                next_payment_attempt=None,
            )
            invoice["status_transitions"]["paid_at"] = now
            self._emit("invoice.paid", invoice)
            return True
        last = invoice["attempt_count"] >= self.invoice_attempts
        invoice["next_payment_attempt"] = None if last else now + RETRY_DAYS * 86400
        self._emit("invoice.payment_failed", invoice)
        return False

    def _subscription(self, sub_id: str) -> dict[str, Any]:
        sub = self.subscriptions.get(sub_id)
        if sub is None:
            raise KeyError(sub_id)
        return sub

    def _end(self, sub: dict[str, Any], at: int) -> None:
        sub.update(status="canceled", ended_at=at, cancel_at_period_end=False)
        if sub["canceled_at"] is None:
            sub["canceled_at"] = at
        self._emit("customer.subscription.deleted", sub)

    # -- the outside world: time passing, the dashboard ------------------------------------

    def renew(self, sub_id: str, card: str | None = None, *, draft: bool = False) -> dict[str, Any]:
        """The current period (or trial) ends: canceled if set to cancel at period end, else
        the next period's invoice is charged to the saved card (`card` replaces it first);
        with `draft`, the invoice waits as a draft for `finalize`."""
        with self._lock:
            sub = self._subscription(sub_id)
            if sub["status"] in ("canceled", "incomplete_expired"):
                raise ValueError(f"subscription {sub_id} is {sub['status']}")
            if card is not None:
                self.cards[sub["customer"]] = card
            item = sub["items"]["data"][0]
            if sub["cancel_at_period_end"]:
                self._end(sub, item["current_period_end"])
                return copy.deepcopy(sub)
            previous = {
                "status": sub["status"],
                "items": copy.deepcopy(sub["items"]),
            }
            start = item["current_period_end"]
            anchor = sub["billing_cycle_anchor"]
            periods = 1
            recurring = item["price"]["recurring"]
            while self._period_end(recurring, anchor, periods) <= start:
                periods += 1
            end = self._period_end(recurring, anchor, periods)
            for each in sub["items"]["data"]:
                each.update(current_period_start=start, current_period_end=end)
            invoice = self._new_invoice(
                sub, "subscription_cycle", int(time.time()), finalize=not draft
            )
            if draft:
                self._drafts[invoice["id"]] = previous
                return copy.deepcopy(sub)
            self._charge_renewal(sub, invoice, previous)
            return copy.deepcopy(sub)

    def _charge_renewal(
        self, sub: dict[str, Any], invoice: dict[str, Any], previous: dict[str, Any]
    ) -> None:
        paid = self._collect(invoice)
        sub["status"] = "active" if paid else "past_due"
        self._emit("customer.subscription.updated", sub, previous)

    def finalize(self, invoice_id: str) -> dict[str, Any]:
        """A renewal's draft invoice is finalized and charged (see renew's `draft`)."""
        with self._lock:
            invoice = self.invoices[invoice_id]
            previous = self._drafts.pop(invoice_id)
            sub = self.subscriptions[invoice["parent"]["subscription_details"]["subscription"]]
            self._finalize(invoice)
            self._charge_renewal(sub, invoice, previous)
            return copy.deepcopy(invoice)

    def trial_will_end(self, sub_id: str) -> "base.StoredEvent":
        """Stripe's notice three days before a trial ends."""
        with self._lock:
            sub = self._subscription(sub_id)
            assert sub["status"] == "trialing", sub["status"]
            return self._emit("customer.subscription.trial_will_end", sub)  # type: ignore[no-any-return]

    def retry(self, sub_id: str, card: str | None = None) -> dict[str, Any]:
        """The next attempt at the subscription's open invoice (Smart Retries, simply): paid
        makes it active; the last failed attempt makes it `final_status`."""
        with self._lock:
            sub = self._subscription(sub_id)
            if card is not None:
                self.cards[sub["customer"]] = card
            invoice = self.invoices[sub["latest_invoice"]]
            if invoice["status"] != "open":
                raise ValueError(f"invoice {invoice['id']} is {invoice['status']}")
            previous = {"status": sub["status"]}
            if self._collect(invoice):
                sub["status"] = "active"
            elif invoice["next_payment_attempt"] is None:
                if self.final_status == "canceled":
                    self._end(sub, int(time.time()))
                    return copy.deepcopy(sub)
                sub["status"] = self.final_status
            if sub["status"] != previous["status"]:
                self._emit("customer.subscription.updated", sub, previous)
            return copy.deepcopy(sub)

    def subscribe_directly(
        self, customer: str, amount: int = 1500, currency: str = "usd"
    ) -> dict[str, Any]:
        """A subscription made outside billgraph (no billgraph metadata), paid at once."""
        with self._lock:
            self.cards.setdefault(customer, base.PAYS)
            price = {
                "currency": currency,
                "unit_amount": amount,
                "name": "Made elsewhere",
                "interval": "month",
                "interval_count": 1,
                "quantity": 1,
            }
            sub = self._new_subscription(customer, [price], {}, int(time.time()), None)
            self._emit("customer.subscription.created", sub)
            invoice = self._new_invoice(sub, "subscription_create", int(time.time()))
            self._collect(invoice)
            sub["status"] = "active"
            self._emit("customer.subscription.updated", sub, {"status": "incomplete"})
            return copy.deepcopy(sub)

    # -- the API --------------------------------------------------------------------------

    def _billing_route(
        self, method: str, parts: list[str], params: dict[str, Any]
    ) -> dict[str, Any] | None:
        match method, parts:
            case "GET", ["v1", "subscriptions", sub_id]:
                return self._get_billing(self.subscriptions, "subscription", sub_id)
            case "GET", ["v1", "invoices", invoice_id]:
                return self._get_billing(self.invoices, "invoice", invoice_id)
            case "DELETE", ["v1", "subscriptions", sub_id]:
                base._known(params, CANCEL_PARAMS)
                sub = self._live_subscription(sub_id)
                self._end(sub, int(time.time()))
                return copy.deepcopy(sub)
            case "POST", ["v1", "subscriptions", sub_id]:
                return self._update_subscription(sub_id, params)
            case "POST", ["v1", "invoiceitems"]:
                return self._create_invoice_item(params)
            case "POST", ["v1", "billing_portal", "sessions"]:
                return self._portal_session(params)
            case "POST", ["v1", "test_helpers", "fake", "subscriptions", sub_id, "renew"]:
                base._known(params, {"card"})
                if sub_id not in self.subscriptions:
                    raise base.no_such("subscription", sub_id, "id", 404)
                return self.renew(sub_id, params.get("card"))
        return None

    def _get_billing(
        self, table: dict[str, dict[str, Any]], kind: str, object_id: str
    ) -> dict[str, Any]:
        obj = table.get(object_id)
        if obj is None:
            raise base.no_such(kind, object_id, "id", 404)
        return copy.deepcopy(obj)

    def _live_subscription(self, sub_id: str) -> dict[str, Any]:
        sub = self.subscriptions.get(sub_id)
        if sub is None:
            raise base.no_such("subscription", sub_id, "id", 404)
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise base.invalid(
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        return sub

    def _update_subscription(self, sub_id: str, params: dict[str, Any]) -> dict[str, Any]:
        base._known(params, UPDATE_PARAMS)
        sub = self._live_subscription(sub_id)
        previous: dict[str, Any] = {}
        if "cancel_at_period_end" in params:
            value = params["cancel_at_period_end"]
            if value not in ("true", "false"):
                raise base.invalid(f"Invalid boolean: {value}", "cancel_at_period_end")
            wanted = value == "true"
            if wanted != sub["cancel_at_period_end"]:
                previous = {
                    "cancel_at_period_end": sub["cancel_at_period_end"],
                    "cancel_at": sub["cancel_at"],
                    "canceled_at": sub["canceled_at"],
                }
                end = sub["items"]["data"][0]["current_period_end"]
                sub.update(
                    cancel_at_period_end=wanted,
                    cancel_at=end if wanted else None,
                    canceled_at=int(time.time()) if wanted else None,
                )
        if "metadata" in params:
            previous["metadata"] = sub["metadata"]
            sub["metadata"] = {**sub["metadata"], **base._metadata(params["metadata"])}
        if previous:
            self._emit("customer.subscription.updated", sub, previous)
        return copy.deepcopy(sub)

    def _create_invoice_item(self, params: dict[str, Any]) -> dict[str, Any]:
        """An item on a draft invoice (this fake takes only those), its totals recomputed."""
        base._known(params, INVOICE_ITEM_PARAMS)
        for name in ("customer", "amount", "currency", "invoice"):
            if name not in params:
                raise base.missing(name)
        invoice = self.invoices.get(params["invoice"])
        if invoice is None:
            raise base.no_such("invoice", str(params["invoice"]), "invoice")
        if invoice["customer"] != params["customer"]:
            raise base.invalid("The invoice belongs to another customer.", "invoice")
        if invoice["status"] != "draft":
            raise base.invalid(
                f"You can only add invoice items to draft invoices; {invoice['id']} is "
                f"{invoice['status']}.",
                "invoice",
            )
        if params["currency"].lower() != invoice["currency"]:
            raise base.invalid("The currency must be the invoice's.", "currency")
        amount = base._integer(params["amount"], "amount", -base.MAX_AMOUNT)
        now = int(time.time())
        item = base._template(
            "invoiceitem",
            id=base.random_id("ii_", 24),
            amount=amount,
            currency=invoice["currency"],
            customer=invoice["customer"],
            date=now,
            description=params.get("description"),
            invoice=invoice["id"],
            livemode=False,
            metadata=base._metadata(params.get("metadata")),
            period={"start": now, "end": now},
            parent=None,
            net_amount=amount,
            quantity_decimal="1",
            customer_account=None,
        )
        line = copy.deepcopy(invoice["lines"]["data"][0])
        line.update(
            id=base.random_id("il_", 24),
            amount=amount,
            subtotal=amount,
            description=item["description"],
            metadata=dict(item["metadata"]),
            period={"start": now, "end": now},
            quantity=1,
            parent={
                "type": "invoice_item_details",
                "subscription_item_details": None,
                "invoice_item_details": {
                    "invoice_item": item["id"],
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": None,
                },
            },
        )
        invoice["lines"]["data"].append(line)
        total = max(sum(each["amount"] for each in invoice["lines"]["data"]), 0)
        invoice.update(
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
            amount_due=total,
            amount_remaining=total,
        )
        return item

    def _portal_session(self, params: dict[str, Any]) -> dict[str, Any]:
        base._known(params, PORTAL_PARAMS)
        if "customer" not in params:
            raise base.missing("customer")
        customer = base._text(params["customer"], "customer")
        if customer not in self.customers:
            raise base.no_such("customer", customer, "customer")
        session_id = base.random_id("bps_", 24)
        session = base._template(
            "billing_portal.session",
            id=session_id,
            customer=customer,
            created=int(time.time()),
            flow=None,
            livemode=False,
            locale=params.get("locale"),
            on_behalf_of=None,
            return_url=None
            if "return_url" not in params
            else base._url(params["return_url"], "return_url"),
            url=f"{self.url}/p/session/{secrets.token_urlsafe(24)}",
            customer_account=None,
        )
        self.portal_sessions[session_id] = session
        return copy.deepcopy(session)
