"""Coupons and promotion codes: Coupon, PromotionCode, a subscription's discount, the
createCoupon and createPromotionCode mutations, validatePromotionCode, and the organization's
coupons."""

from datetime import datetime
from typing import cast

import strawberry

from billgraph.billing import coupons, repository
from billgraph.billing.clock import customer_clock, system_now
from billgraph.core import errors, validation
from billgraph.core.unit import unit_of_work
from billgraph.customers import repository as customer_repository
from billgraph.db import models
from billgraph.graphql.context import Info
from billgraph.graphql.currencies import Currency
from billgraph.graphql.errors import graphql_error, result
from billgraph.graphql.node import (
    Node,
    db_id_of,
    input_id,
    load_existing,
    node_loader,
    to_global_id,
)
from billgraph.graphql.pagination import Connection, build_connection, decode_cursor, page_size
from billgraph.graphql.scalars import BigInt

COUPON_CURSOR = "coupon"

strawberry.enum(
    coupons.CouponDuration,
    description="Which invoices a coupon discounts: the first (ONCE), those of "
    "durationInMonths months from the subscription's start (REPEATING), or all (FOREVER).",
)
CouponDuration = coupons.CouponDuration


@strawberry.type(
    description="A discount: percentOff (a whole percent) or amountOff in its currency, for "
    "the invoices its duration says."
)
class Coupon(Node):
    db_id: strawberry.Private[int]
    name: str
    percent_off: int | None
    amount_off: BigInt | None = strawberry.field(description="In the currency's minor unit.")
    currency: Currency | None = strawberry.field(description="amountOff's currency.")
    duration: CouponDuration
    duration_in_months: int | None = strawberry.field(description="REPEATING coupons' months.")
    max_redemptions: int | None
    times_redeemed: int
    redeem_by: datetime | None = strawberry.field(
        description="No subscription takes it from this time on."
    )
    description: str = strawberry.field(description='What it gives: "20% off for 3 months".')
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.Coupon) -> "Coupon":
        return cls(
            id=to_global_id("Coupon", row.id),
            db_id=row.id,
            name=row.name,
            percent_off=row.percent_off,
            amount_off=None if row.amount_off is None else BigInt(row.amount_off),
            currency=None if row.currency is None else Currency(row.currency),
            duration=coupons.CouponDuration(row.duration),
            duration_in_months=row.duration_in_months,
            max_redemptions=row.max_redemptions,
            times_redeemed=row.times_redeemed,
            redeem_by=row.redeem_by,
            description=coupons.description(row),
            created_at=row.created_at,
        )


@strawberry.type(description="A code customers give createSubscription to get its coupon.")
class PromotionCode(Node):
    db_id: strawberry.Private[int]
    coupon_db_id: strawberry.Private[int]
    code: str = strawberry.field(description="As created; matched whatever its case.")
    max_redemptions: int | None
    times_redeemed: int
    expires_at: datetime | None
    first_time_only: bool = strawberry.field(
        description="Only for customers who never had a subscription."
    )
    minimum_amount: BigInt | None = strawberry.field(
        description="The least plan amount that takes the code, in minimumAmountCurrency."
    )
    minimum_amount_currency: Currency | None = strawberry.field(
        description="A plan in another currency does not take the code."
    )
    active: bool = strawberry.field(
        description="False once archived: no new redemptions; subscriptions that took it "
        "keep their discount."
    )
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.PromotionCode) -> "PromotionCode":
        return cls(
            id=to_global_id("PromotionCode", row.id),
            db_id=row.id,
            coupon_db_id=row.coupon_id,
            code=row.code,
            max_redemptions=row.max_redemptions,
            times_redeemed=row.times_redeemed,
            expires_at=row.expires_at,
            first_time_only=row.first_time_only,
            minimum_amount=None if row.minimum_amount is None else BigInt(row.minimum_amount),
            minimum_amount_currency=(
                None
                if row.minimum_amount_currency is None
                else Currency(row.minimum_amount_currency)
            ),
            active=row.active,
            created_at=row.created_at,
        )

    @strawberry.field
    async def coupon(self, info: Info) -> Coupon:
        return cast(Coupon, await load_existing(info, "Coupon", self.coupon_db_id))


@strawberry.type(description="The coupon a subscription redeemed, and until when it applies.")
class SubscriptionDiscount:
    coupon_db_id: strawberry.Private[int]
    promotion_code_db_id: strawberry.Private[int | None]
    starts_at: datetime
    ends_at: datetime | None = strawberry.field(
        description="Invoices whose period starts from this time on are not discounted; null: "
        "for ever."
    )

    @classmethod
    def from_model(cls, row: models.SubscriptionDiscount) -> "SubscriptionDiscount":
        return cls(
            coupon_db_id=row.coupon_id,
            promotion_code_db_id=row.promotion_code_id,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
        )

    @strawberry.field
    async def coupon(self, info: Info) -> Coupon:
        return cast(Coupon, await load_existing(info, "Coupon", self.coupon_db_id))

    @strawberry.field
    async def promotion_code(self, info: Info) -> PromotionCode | None:
        if self.promotion_code_db_id is None:
            return None
        return cast(
            PromotionCode, await load_existing(info, "PromotionCode", self.promotion_code_db_id)
        )


async def subscription_discount(info: Info, subscription_db_id: int) -> SubscriptionDiscount | None:
    row = await info.context.loaders.billing.subscription_discount.load(subscription_db_id)
    return None if row is None else SubscriptionDiscount.from_model(row)


@strawberry.type(description="Whether a promotion code may be redeemed on a plan, and what for.")
class PromotionCodeValidation:
    valid: bool
    reason: str | None = strawberry.field(description="Why not, when it is not valid.")
    coupon: Coupon | None = strawberry.field(description="What the code redeems, if it exists.")
    description: str | None = strawberry.field(
        description='What the code gives: "20% off for 3 months", "5.00 USD off once".'
    )


async def coupon_page(info: Info, *, first: int | None, after: str | None) -> Connection[Coupon]:
    """The organization's coupons in creation order."""
    limit = page_size(first)
    after_id = decode_cursor(COUPON_CURSOR, after)
    async with info.context.database.sessions() as session:
        rows = await coupons.coupons_page(
            session, info.context.organization_id, limit=limit + 1, after_id=after_id
        )
    return build_connection(rows, limit, COUPON_CURSOR, lambda r: r.id, Coupon.from_model)


@node_loader("Coupon")
async def _load_coupon(info: Info, db_id: int) -> Coupon | None:
    row = await info.context.loaders.billing.coupon.load(db_id)
    return Coupon.from_model(row) if row is not None else None


@node_loader("PromotionCode")
async def _load_promotion_code(info: Info, db_id: int) -> PromotionCode | None:
    row = await info.context.loaders.billing.promotion_code.load(db_id)
    return PromotionCode.from_model(row) if row is not None else None


# --- inputs, payloads, mutations, queries ---------------------------------------------------


@strawberry.input
class CreateCouponInput:
    name: str
    percent_off: int | None = strawberry.field(
        default=None, description="A whole percent, 1 to 100; or give amountOff."
    )
    amount_off: BigInt | None = strawberry.field(
        default=None, description="Positive, in currency's minor unit; or give percentOff."
    )
    currency: Currency | None = strawberry.field(default=None, description="With amountOff.")
    duration: CouponDuration
    duration_in_months: int | None = strawberry.field(
        default=None, description="For REPEATING only: 1 to 120."
    )
    max_redemptions: int | None = None
    redeem_by: datetime | None = strawberry.field(
        default=None, description="In the future, with its timezone."
    )


@strawberry.input
class CreatePromotionCodeInput:
    coupon_id: strawberry.ID
    code: str = strawberry.field(
        description="1 to 64 letters, digits, '_' or '-'; unique in the organization whatever "
        "its case."
    )
    max_redemptions: int | None = None
    expires_at: datetime | None = strawberry.field(
        default=None, description="In the future, with its timezone."
    )
    first_time_only: bool = strawberry.field(
        default=False, description="Only for customers who never had a subscription."
    )
    minimum_amount: BigInt | None = strawberry.field(
        default=None, description="The least plan amount, in minimumAmountCurrency."
    )
    minimum_amount_currency: Currency | None = strawberry.field(
        default=None,
        description="With minimumAmount (an amountOff coupon's currency, for such a coupon).",
    )


@strawberry.type
class CreateCouponSuccess:
    coupon: Coupon


@strawberry.type
class CreatePromotionCodeSuccess:
    promotion_code: PromotionCode


@strawberry.type
class ArchivePromotionCodeSuccess:
    promotion_code: PromotionCode


def _currency(value: Currency | None) -> str | None:
    return None if value is None else value.value


@strawberry.type
class CouponMutations:
    @strawberry.mutation(description="A coupon that promotion codes redeem.")
    @result("CreateCouponResult", CreateCouponSuccess, errors.ValidationError)
    async def create_coupon(self, info: Info, input: CreateCouponInput) -> CreateCouponSuccess:
        context = info.context
        request = coupons.coupon_request(
            context.organization_id,
            name=input.name,
            percent_off=input.percent_off,
            amount_off=input.amount_off,
            currency=_currency(input.currency),
            duration=input.duration,
            duration_in_months=input.duration_in_months,
            max_redemptions=input.max_redemptions,
            redeem_by=input.redeem_by,
        )
        async with unit_of_work(context.database) as unit:
            coupon = await coupons.create_coupon(unit, request)
        return CreateCouponSuccess(coupon=Coupon.from_model(coupon))

    @strawberry.mutation(description="A code for a coupon, for createSubscription's promotionCode.")
    @result(
        "CreatePromotionCodeResult",
        CreatePromotionCodeSuccess,
        errors.ValidationError,
        errors.NotFoundError,
        errors.ConflictError,
    )
    async def create_promotion_code(
        self, info: Info, input: CreatePromotionCodeInput
    ) -> CreatePromotionCodeSuccess:
        context = info.context
        coupon_id = input_id(input.coupon_id, "Coupon", "couponId", "Coupon not found.")
        request = coupons.promotion_code_request(
            context.organization_id,
            coupon_id=coupon_id,
            code=input.code,
            max_redemptions=input.max_redemptions,
            expires_at=input.expires_at,
            first_time_only=input.first_time_only,
            minimum_amount=input.minimum_amount,
            minimum_amount_currency=_currency(input.minimum_amount_currency),
        )
        async with unit_of_work(context.database) as unit:
            row = await coupons.create_promotion_code(unit, request)
        return CreatePromotionCodeSuccess(promotion_code=PromotionCode.from_model(row))

    @strawberry.mutation(
        description="No new redemptions of the code; subscriptions that took it keep their "
        "discount. Archiving twice is fine."
    )
    @result(
        "ArchivePromotionCodeResult",
        ArchivePromotionCodeSuccess,
        errors.NotFoundError,
        errors.ValidationError,
    )
    async def archive_promotion_code(
        self, info: Info, id: strawberry.ID
    ) -> ArchivePromotionCodeSuccess:
        context = info.context
        code_id = input_id(id, "PromotionCode", "id", "Promotion code not found.")
        async with unit_of_work(context.database) as unit:
            row = await coupons.archive_promotion_code(unit, context.organization_id, code_id)
        return ArchivePromotionCodeSuccess(promotion_code=PromotionCode.from_model(row))


@strawberry.type
class CouponQueries:
    @strawberry.field(
        description="Whether createSubscription would take the code on the plan now. With "
        "customerId, at the customer's time (its test clock's) and for that customer "
        "(firstTimeOnly codes); without, firstTimeOnly is not checked. The last redemption "
        "may still go to someone else first. A malformed id is BAD_USER_INPUT."
    )
    async def validate_promotion_code(
        self,
        info: Info,
        code: str,
        plan_id: strawberry.ID,
        customer_id: strawberry.ID | None = None,
    ) -> PromotionCodeValidation:
        context = info.context
        organization_id = context.organization_id
        try:
            validation.storable(code, "code")
            plan_db_id = db_id_of(plan_id, "Plan", "planId")
            customer_db_id = (
                None if customer_id is None else db_id_of(customer_id, "Customer", "customerId")
            )
        except errors.ValidationError as exc:  # as every query field answers a malformed id
            raise graphql_error(exc.message, "BAD_USER_INPUT") from None
        async with context.database.sessions() as session:
            offer = await coupons.find(session, organization_id, code)
            if offer is None:
                return PromotionCodeValidation(
                    valid=False, reason="No such promotion code.", coupon=None, description=None
                )
            found = Coupon.from_model(offer.coupon)
            plan = None
            if plan_db_id is not None:
                plan = await repository.plan_by_id(session, organization_id, plan_db_id)
            if plan is None or not plan.active:
                return PromotionCodeValidation(
                    valid=False,
                    reason="Plan not found." if plan is None else "The plan is archived.",
                    coupon=found,
                    description=found.description,
                )
            at = system_now()
            returning = False
            if customer_db_id is not None:
                customer = await customer_repository.live_customer(
                    session, organization_id, customer_db_id
                )
                if customer is None:
                    return PromotionCodeValidation(
                        valid=False,
                        reason="Customer not found.",
                        coupon=found,
                        description=found.description,
                    )
                clock = await customer_clock(session, customer_db_id)
                at = clock.frozen_time if clock is not None else at
                returning = await repository.customer_has_subscriptions(session, customer_db_id)
            reason = coupons.refusal(offer, plan, at, returning_customer=returning)
        return PromotionCodeValidation(
            valid=reason is None, reason=reason, coupon=found, description=found.description
        )
