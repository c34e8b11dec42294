"""Coupons and promotion codes: a discount a subscription takes when it starts with a code.

- A coupon is `percent_off` (a whole percent, 1 to 100: what people are offered, and no
  fraction of a percent has to be rounded twice) or `amount_off` in one currency, for the
  first invoice (ONCE), the invoices of `duration_in_months` months from the subscription's
  start (REPEATING) or every invoice (FOREVER).
- A promotion code is what a customer types: unique per organization, matched whatever its
  case. `minimum_amount` is in `minimum_amount_currency` (as Stripe's promotion codes): a
  plan in another currency does not take the code.
- A redemption counts when createSubscription succeeds with the code, in its unit of work:
  one conditional UPDATE on the code and one on its coupon, each refusing to pass
  `max_redemptions`, so racing subscriptions never redeem more than allowed.
- The discount of an invoice: percentOff of the subtotal rounded half up to the minor unit
  (12.5 cents is 13), amountOff at most the subtotal.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billgraph.billing import periods
from billgraph.billing.clock import system_now
from billgraph.billing.test_clocks import LATEST
from billgraph.core import validation
from billgraph.core.errors import ConflictError, NotFoundError, ValidationError
from billgraph.core.unit import UnitOfWork
from billgraph.currencies import format_amount
from billgraph.db.models import (
    Coupon,
    Plan,
    PromotionCode,
    Subscription,
    SubscriptionDiscount,
    utcnow,
)
from billgraph.db.queries import by_ids

CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_DURATION_IN_MONTHS = 120
MAX_REDEMPTIONS = 2**31 - 1  # an INTEGER column


class CouponDuration(StrEnum):
    ONCE = "ONCE"
    REPEATING = "REPEATING"
    FOREVER = "FOREVER"


@dataclass(frozen=True)
class CouponRequest:
    organization_id: int
    name: str
    percent_off: int | None
    amount_off: int | None
    currency: str | None
    duration: CouponDuration
    duration_in_months: int | None
    max_redemptions: int | None
    redeem_by: datetime | None


@dataclass(frozen=True)
class PromotionCodeRequest:
    organization_id: int
    coupon_id: int
    code: str
    max_redemptions: int | None
    expires_at: datetime | None
    first_time_only: bool
    minimum_amount: int | None
    minimum_amount_currency: str | None


def _max_redemptions(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not 1 <= value <= MAX_REDEMPTIONS:
        raise ValidationError(
            f"maxRedemptions must be between 1 and {MAX_REDEMPTIONS}.", "maxRedemptions"
        )
    return value


def _future(value: datetime | None, field: str, now: datetime) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationError(f"{field} must carry its timezone.", field)
    if not now < value < LATEST:  # a year 9999 would overflow the periods counted to it
        raise ValidationError(f"{field} must be in the future (and before 3000).", field)
    return system_now(value)


def coupon_request(
    organization_id: int,
    *,
    name: str,
    duration: CouponDuration | str,
    percent_off: int | None = None,
    amount_off: int | None = None,
    currency: str | None = None,
    duration_in_months: int | None = None,
    max_redemptions: int | None = None,
    redeem_by: datetime | None = None,
    now: datetime | None = None,
) -> CouponRequest:
    """The checked request; raises ValidationError naming the field at fault."""
    checked_name = validation.text(name, "name", max_length=200, required=True)
    assert checked_name is not None
    if (percent_off is None) == (amount_off is None):
        raise ValidationError("Give either percentOff or amountOff (with currency).", "percentOff")
    if percent_off is not None:
        if isinstance(percent_off, bool) or not 1 <= percent_off <= 100:
            raise ValidationError("percentOff is a whole percent from 1 to 100.", "percentOff")
        if currency is not None:
            raise ValidationError("currency goes with amountOff only.", "currency")
    checked_currency = None
    if amount_off is not None:
        amount_off = validation.amount(amount_off, "amountOff")
        if currency is None:
            raise ValidationError("amountOff needs its currency.", "currency")
        checked_currency = validation.currency(currency)
    try:
        checked_duration = CouponDuration(duration)
    except ValueError:
        raise ValidationError("duration is ONCE, REPEATING or FOREVER.", "duration") from None
    if checked_duration is CouponDuration.REPEATING:
        if duration_in_months is None:
            raise ValidationError("A REPEATING coupon needs durationInMonths.", "durationInMonths")
        if isinstance(duration_in_months, bool) or not (
            1 <= duration_in_months <= MAX_DURATION_IN_MONTHS
        ):
            raise ValidationError(
                f"durationInMonths must be between 1 and {MAX_DURATION_IN_MONTHS}.",
                "durationInMonths",
            )
    elif duration_in_months is not None:
        raise ValidationError(
            "durationInMonths goes with a REPEATING coupon only.", "durationInMonths"
        )
    return CouponRequest(
        organization_id=organization_id,
        name=checked_name,
        percent_off=percent_off,
        amount_off=amount_off,
        currency=checked_currency,
        duration=checked_duration,
        duration_in_months=duration_in_months,
        max_redemptions=_max_redemptions(max_redemptions),
        redeem_by=_future(redeem_by, "redeemBy", system_now(now)),
    )


def promotion_code_request(
    organization_id: int,
    *,
    coupon_id: int,
    code: str,
    max_redemptions: int | None = None,
    expires_at: datetime | None = None,
    first_time_only: bool = False,
    minimum_amount: int | None = None,
    minimum_amount_currency: str | None = None,
    now: datetime | None = None,
) -> PromotionCodeRequest:
    """The checked request (the coupon is checked by `create_promotion_code`); raises
    ValidationError naming the field at fault."""
    if not CODE.fullmatch(code):
        raise ValidationError(
            "code is 1 to 64 letters, digits, '_' or '-' (matched whatever its case).", "code"
        )
    checked_currency = None
    if minimum_amount is not None:
        minimum_amount = validation.amount(minimum_amount, "minimumAmount")
        if minimum_amount_currency is None:
            raise ValidationError(
                "minimumAmount needs its currency (minimumAmountCurrency).",
                "minimumAmountCurrency",
            )
        checked_currency = validation.currency(minimum_amount_currency, "minimumAmountCurrency")
    elif minimum_amount_currency is not None:
        raise ValidationError(
            "minimumAmountCurrency goes with minimumAmount only.", "minimumAmountCurrency"
        )
    return PromotionCodeRequest(
        organization_id=organization_id,
        coupon_id=coupon_id,
        code=code,
        max_redemptions=_max_redemptions(max_redemptions),
        expires_at=_future(expires_at, "expiresAt", system_now(now)),
        first_time_only=bool(first_time_only),
        minimum_amount=minimum_amount,
        minimum_amount_currency=checked_currency,
    )


async def create_coupon(unit: UnitOfWork, request: CouponRequest) -> Coupon:
    coupon = Coupon(
        organization_id=request.organization_id,
        name=request.name,
        percent_off=request.percent_off,
        amount_off=request.amount_off,
        currency=request.currency,
        duration=request.duration.value,
        duration_in_months=request.duration_in_months,
        max_redemptions=request.max_redemptions,
        times_redeemed=0,
        redeem_by=request.redeem_by,
        created_at=utcnow(),
    )
    unit.session.add(coupon)
    await unit.session.flush()
    return coupon


async def create_promotion_code(unit: UnitOfWork, request: PromotionCodeRequest) -> PromotionCode:
    """Raises NotFoundError (the coupon), ValidationError (a minimum in another currency than
    an amountOff coupon's), ConflictError (the code is taken, whatever its case)."""
    session = unit.session
    coupon = await coupon_by_id(session, request.organization_id, request.coupon_id)
    if coupon is None:
        raise NotFoundError("Coupon not found.")
    if (
        request.minimum_amount_currency is not None
        and coupon.currency is not None
        and request.minimum_amount_currency != coupon.currency
    ):
        raise ValidationError(
            f"The coupon takes {coupon.currency} off: the minimum must be in {coupon.currency}.",
            "minimumAmountCurrency",
        )
    insert = (sqlite.insert if unit.is_sqlite else postgresql.insert)(PromotionCode)
    new_id = await session.scalar(
        insert.values(
            organization_id=request.organization_id,
            coupon_id=coupon.id,
            code=request.code,
            lookup=request.code.upper(),
            max_redemptions=request.max_redemptions,
            times_redeemed=0,
            expires_at=request.expires_at,
            first_time_only=request.first_time_only,
            minimum_amount=request.minimum_amount,
            minimum_amount_currency=request.minimum_amount_currency,
            active=True,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["organization_id", "lookup"])
        .returning(PromotionCode.id)
    )
    if new_id is None:
        raise ConflictError(f"The code {request.code!r} is in use already.", "code")
    row = await session.get(PromotionCode, new_id)
    assert row is not None
    return row


async def archive_promotion_code(
    unit: UnitOfWork, organization_id: int, promotion_code_id: int
) -> PromotionCode:
    """No new redemptions of the code; subscriptions that took it keep their discount.
    Archiving twice is fine. Raises NotFoundError."""
    row = await unit.session.scalar(
        select(PromotionCode).where(
            PromotionCode.organization_id == organization_id,
            PromotionCode.id == promotion_code_id,
        )
    )
    if row is None:
        raise NotFoundError("Promotion code not found.")
    if row.active:
        row.active = False
        await unit.session.flush()
    return row


# --- what a code gives, and whether it may be redeemed ---------------------------------------


@dataclass(frozen=True)
class Offer:
    promotion_code: PromotionCode
    coupon: Coupon


def description(coupon: Coupon) -> str:
    """What the coupon gives, as people read it: "20% off for 3 months", "5.00 USD off once"."""
    if coupon.percent_off is not None:
        off = f"{coupon.percent_off}% off"
    else:
        assert coupon.amount_off is not None and coupon.currency is not None
        off = f"{format_amount(coupon.amount_off, coupon.currency)} off"
    duration = CouponDuration(coupon.duration)
    if duration is CouponDuration.ONCE:
        return f"{off} once"
    if duration is CouponDuration.FOREVER:
        return f"{off} forever"
    months = coupon.duration_in_months
    return f"{off} for {months} month{'' if months == 1 else 's'}"


async def find(session: AsyncSession, organization_id: int, code: str) -> Offer | None:
    """The organization's promotion code (whatever the case) and its coupon."""
    if not CODE.fullmatch(code):
        return None
    row = await _code_by_lookup(session, organization_id, code.upper())
    if row is None:
        return None
    coupon = await coupon_by_id(session, organization_id, row.coupon_id)
    assert coupon is not None
    return Offer(row, coupon)


def refusal(offer: Offer, plan: Plan, at: datetime, *, returning_customer: bool) -> str | None:
    """Why the code cannot be redeemed on `plan` at `at` (None: it can). `returning_customer`:
    the customer had a subscription before (False when unknown)."""
    code, coupon = offer.promotion_code, offer.coupon
    if not code.active:
        return "The promotion code is archived."
    if code.expires_at is not None and code.expires_at <= at:
        return f"The promotion code expired on {code.expires_at:%Y-%m-%d}."
    if coupon.redeem_by is not None and coupon.redeem_by <= at:
        return f"The coupon could be redeemed until {coupon.redeem_by:%Y-%m-%d} only."
    if _used_up(code.times_redeemed, code.max_redemptions):
        return "The promotion code has been used up."
    if _used_up(coupon.times_redeemed, coupon.max_redemptions):
        return "The coupon has been used up."
    if coupon.currency is not None and coupon.currency != plan.currency:
        return f"The coupon takes {coupon.currency} off: the plan bills {plan.currency}."
    if code.minimum_amount is not None:
        assert code.minimum_amount_currency is not None
        minimum = format_amount(code.minimum_amount, code.minimum_amount_currency)
        if code.minimum_amount_currency != plan.currency or plan.amount < code.minimum_amount:
            return f"The promotion code needs a plan of at least {minimum}."
    if code.first_time_only and returning_customer:
        return "The promotion code is for customers who never subscribed before."
    return None


def _used_up(times: int, maximum: int | None) -> bool:
    return maximum is not None and times >= maximum


async def redeem(
    unit: UnitOfWork, offer: Offer, subscription: Subscription, plan: Plan, start: datetime
) -> SubscriptionDiscount:
    """Count the redemption on the code and its coupon, and give the new subscription the
    discount. Each count is one conditional UPDATE that cannot pass max_redemptions: a
    ValidationError (field promotionCode) when the last one went to someone else; the caller's
    unit then rolls back, and nothing is written."""
    for model, row_id in ((PromotionCode, offer.promotion_code.id), (Coupon, offer.coupon.id)):
        counted = await unit.session.execute(
            update(model)
            .where(
                model.id == row_id,
                (model.max_redemptions.is_(None)) | (model.times_redeemed < model.max_redemptions),
            )
            .values(times_redeemed=model.times_redeemed + 1)
            .execution_options(synchronize_session=False)
        )
        if counted.rowcount != 1:  # type: ignore[attr-defined]
            what = "promotion code" if model is PromotionCode else "coupon"
            raise ValidationError(f"The {what} has been used up.", "promotionCode")
    discount = SubscriptionDiscount(
        subscription_id=subscription.id,
        organization_id=subscription.organization_id,
        coupon_id=offer.coupon.id,
        promotion_code_id=offer.promotion_code.id,
        starts_at=start,
        ends_at=_ends_at(offer.coupon, subscription, plan, start),
    )
    unit.session.add(discount)
    await unit.session.flush()
    return discount


def _ends_at(
    coupon: Coupon, subscription: Subscription, plan: Plan, start: datetime
) -> datetime | None:
    """Invoices whose period starts before this are discounted. ONCE: the first billed period
    (after a trial, the one starting at its end: the anchor); REPEATING: the months from the
    start; FOREVER: no end."""
    duration = CouponDuration(coupon.duration)
    if duration is CouponDuration.ONCE:
        return periods.boundary(subscription.billing_anchor, plan.interval, plan.interval_count, 1)
    if duration is CouponDuration.REPEATING:
        assert coupon.duration_in_months is not None
        return periods.add_months(start, coupon.duration_in_months)
    return None


async def invoice_discount(
    session: AsyncSession,
    subscription_id: int,
    currency: str,
    subtotal: int,
    period_start: datetime,
) -> int:
    """What the subscription's discount takes off an invoice of `subtotal` for the period
    starting at `period_start`: 0 without one, once it ended, or for a negative subtotal."""
    if subtotal <= 0:
        return 0
    found = (
        await session.execute(
            select(SubscriptionDiscount, Coupon)
            .join(Coupon, Coupon.id == SubscriptionDiscount.coupon_id)
            .where(SubscriptionDiscount.subscription_id == subscription_id)
        )
    ).first()
    if found is None:
        return 0
    discount, coupon = found
    if discount.ends_at is not None and period_start >= discount.ends_at:
        return 0
    if coupon.percent_off is not None:
        return (subtotal * coupon.percent_off * 2 + 100) // 200  # half up
    assert coupon.amount_off is not None
    return min(coupon.amount_off, subtotal) if coupon.currency == currency else 0


# --- queries --------------------------------------------------------------------------------


async def coupon_by_id(
    session: AsyncSession, organization_id: int, coupon_id: int
) -> Coupon | None:
    return await session.scalar(
        select(Coupon).where(Coupon.organization_id == organization_id, Coupon.id == coupon_id)
    )


async def subscription_coupon(session: AsyncSession, subscription_id: int) -> Coupon | None:
    """The coupon the subscription redeemed, if any (whether its discount still runs or not)."""
    return await session.scalar(
        select(Coupon)
        .join(SubscriptionDiscount, SubscriptionDiscount.coupon_id == Coupon.id)
        .where(SubscriptionDiscount.subscription_id == subscription_id)
    )


async def _code_by_lookup(
    session: AsyncSession, organization_id: int, lookup: str
) -> PromotionCode | None:
    return await session.scalar(
        select(PromotionCode).where(
            PromotionCode.organization_id == organization_id, PromotionCode.lookup == lookup
        )
    )


async def coupons_page(
    session: AsyncSession, organization_id: int, *, limit: int, after_id: int | None = None
) -> list[Coupon]:
    """Coupons in creation order after `after_id`."""
    query = select(Coupon).where(Coupon.organization_id == organization_id)
    if after_id is not None:
        query = query.where(Coupon.id > after_id)
    return list(await session.scalars(query.order_by(Coupon.id).limit(limit)))


async def coupons_by_ids(
    session: AsyncSession, organization_id: int, ids: Sequence[int]
) -> dict[int, Coupon]:
    return await by_ids(session, Coupon, organization_id, ids)


async def promotion_codes_by_ids(
    session: AsyncSession, organization_id: int, ids: Sequence[int]
) -> dict[int, PromotionCode]:
    return await by_ids(session, PromotionCode, organization_id, ids)


async def discounts_by_subscription_ids(
    session: AsyncSession, organization_id: int, ids: Sequence[int]
) -> dict[int, SubscriptionDiscount]:
    rows = await session.scalars(
        select(SubscriptionDiscount).where(
            SubscriptionDiscount.organization_id == organization_id,
            SubscriptionDiscount.subscription_id.in_(ids),
        )
    )
    return {row.subscription_id: row for row in rows}
