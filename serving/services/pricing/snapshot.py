"""Everything pricing reads, loaded once for a set of orders, then used without a database.

The checkout's batch prices tens of orders per transaction: reading the rate tables once per
order would add six statements to each. A snapshot reads each table once for the whole set
(the products, weights, destinations and coupons they name) and then prices each order in
memory with the same ``compute_quote`` the quote endpoint uses. A single quote is a snapshot
of one order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, false, or_, select
from sqlalchemy.orm import Session

from serving.core.config import Settings
from serving.core.errors import NotFound, Unprocessable
from serving.db.tables import (
    Category,
    DutyRate,
    Product,
    ProductWeight,
    Promotion,
    PromotionUsage,
    ShippingRate,
    TaxRate,
)

from .promotions import CouponExhausted, normalise_code
from .quote import (
    NO_TAX,
    Duty,
    Line,
    PricingError,
    Promo,
    Quote,
    ShippingOption,
    Tax,
    compute_quote,
)
from .rates import ANY_COUNTRY, fallback_option

_TAX = TaxRate.__table__
_DUTY = DutyRate.__table__
_PROMOTIONS = Promotion.__table__
_USAGE = PromotionUsage.__table__


def _promo(row: Any, path: str | None) -> Promo:
    return Promo(
        id=row.id,
        code=row.code,
        name=row.name,
        kind=row.kind,
        percent_bp=row.percent_bp,
        amount_minor=row.amount_minor,
        currency=row.currency,
        min_subtotal_minor=row.min_subtotal_minor,
        category_path=path,
    )


def _option(row: Any) -> ShippingOption:
    return ShippingOption(
        speed=row.speed,
        base_minor=row.base_minor,
        per_kg_minor=row.per_kg_minor,
        free_from_minor=row.free_from_minor,
        max_weight_g=row.max_weight_g,
        min_days=row.min_days,
        max_days=row.max_days,
    )


@dataclass
class Snapshot:
    settings: Settings
    now: datetime
    products: dict[int, Any] = field(default_factory=dict)
    weights: dict[int, int] = field(default_factory=dict)
    shipping: list[Any] = field(default_factory=list)
    configured_currencies: set[str] = field(default_factory=set)
    taxes: dict[str, Tax] = field(default_factory=dict)
    duties: dict[str, Any] = field(default_factory=dict)
    automatic: list[Promo] = field(default_factory=list)
    coupons: dict[str, tuple[Any, str | None]] = field(default_factory=dict)
    customer_uses: dict[tuple[int, int], int] = field(default_factory=dict)

    # --- lookups ---------------------------------------------------------------------------

    def lines(self, lines: dict[int, int]) -> tuple[list[Line], str]:
        if not lines:
            raise Unprocessable("The cart is empty and the request names no items", code="empty")
        for product_id in lines:
            if product_id not in self.products:
                raise NotFound("Product", product_id)
        currencies = {self.products[p].currency for p in lines}
        if len(currencies) != 1:
            raise Unprocessable(
                "All items of one order must share a currency", code="mixed_currency"
            )
        default = self.settings.default_item_weight_g
        return [
            Line(
                product_id=p,
                title=self.products[p].title,
                quantity=lines[p],
                unit_price_minor=self.products[p].price_minor,
                category_path=self.products[p].path,
                weight_g=self.weights.get(p, default),
            )
            for p in sorted(lines)
        ], currencies.pop()

    def options(self, country: str, currency: str) -> list[ShippingOption]:
        by_speed: dict[str, Any] = {}
        for row in self.shipping:
            if row.currency != currency or row.country not in (country, ANY_COUNTRY):
                continue
            if row.speed not in by_speed or row.country != ANY_COUNTRY:
                by_speed[row.speed] = row
        if by_speed:
            return [_option(row) for row in by_speed.values()]
        if currency in self.configured_currencies:
            return []
        return [fallback_option(self.settings)]

    def duty(self, country: str, currency: str) -> Duty | None:
        if country == self.settings.shop_origin_country:
            return None
        row = self.duties.get(country)
        if row is None:
            return None
        if row.currency != currency:
            raise PricingError(
                f"Customs duty for {country} is configured in {row.currency}, this order is "
                f"in {currency}",
                code="duty_unavailable",
                country=country,
            )
        return Duty(rate_ppm=row.rate_ppm, de_minimis_minor=row.de_minimis_minor)

    def coupon(self, code: str, user_id: int | None) -> Promo:
        found = self.coupons.get(normalise_code(code))
        if found is None or not found[0].active:
            raise PricingError(
                f"Coupon {normalise_code(code)} does not exist", code="coupon_unknown"
            )
        promo, path = found
        if promo.starts_at is not None and self.now < promo.starts_at:
            raise PricingError(
                f"Coupon {promo.code} is valid from {promo.starts_at.isoformat()}",
                code="coupon_not_started",
            )
        if promo.ends_at is not None and self.now >= promo.ends_at:
            raise PricingError(
                f"Coupon {promo.code} expired at {promo.ends_at.isoformat()}",
                code="coupon_expired",
            )
        if promo.max_uses is not None and promo.uses >= promo.max_uses:
            raise CouponExhausted(promo.code, per_customer=False)
        if user_id is not None and promo.max_uses_per_customer is not None:
            used = self.customer_uses.get((promo.id, user_id), 0)
            if used >= promo.max_uses_per_customer:
                raise CouponExhausted(promo.code, per_customer=True)
        return _promo(promo, path)

    def quote(
        self,
        *,
        lines: dict[int, int],
        country: str,
        speed: str | None,
        coupon_code: str | None,
        user_id: int | None,
    ) -> Quote:
        """One order's totals (the shopper's problems raised before anything is written)."""
        country = country.upper()
        priced, currency = self.lines(lines)
        coupon = self.coupon(coupon_code, user_id) if coupon_code else None
        return compute_quote(
            lines=priced,
            currency=currency,
            country=country,
            speed=speed,
            options=self.options(country, currency),
            tax=self.taxes.get(country, NO_TAX),
            duty=self.duty(country, currency),
            coupon=coupon,
            automatic=self.automatic,
        )


def load(
    db: Session | Connection,
    settings: Settings,
    *,
    product_ids: Iterable[int],
    countries: Iterable[str],
    coupon_codes: Iterable[str],
    user_ids: Iterable[int],
    now: datetime,
) -> Snapshot:
    """Read what pricing needs for these orders: one statement per table. ``db`` is a
    Session or the checkout batch's Connection (Core statements only)."""
    product_ids = sorted(set(product_ids))
    countries = sorted({c.upper() for c in countries})
    codes = sorted({normalise_code(c) for c in coupon_codes})
    users = sorted(set(user_ids))
    snap = Snapshot(settings=settings, now=now)
    if product_ids:
        snap.products = {
            row.id: row
            for row in db.execute(
                select(
                    Product.id, Product.title, Product.price_minor, Product.currency, Category.path
                )
                .join(Category, Category.id == Product.category_id)
                .where(Product.id.in_(product_ids))
            )
        }
        snap.weights = dict(
            db.execute(
                select(ProductWeight.product_id, ProductWeight.weight_g).where(
                    ProductWeight.product_id.in_(product_ids)
                )
            ).all()
        )
    rows = db.execute(
        select(
            ShippingRate.country,
            ShippingRate.speed,
            ShippingRate.currency,
            ShippingRate.base_minor,
            ShippingRate.per_kg_minor,
            ShippingRate.free_from_minor,
            ShippingRate.max_weight_g,
            ShippingRate.min_days,
            ShippingRate.max_days,
            ShippingRate.active,
        )
    ).all()
    # Every row (any country) says whether a currency is configured; only active rows for
    # these destinations are options.
    snap.configured_currencies = {row.currency for row in rows}
    wanted = {*countries, ANY_COUNTRY}
    snap.shipping = [row for row in rows if row.active and row.country in wanted]
    if countries:
        snap.taxes = {
            row.country: Tax(
                name=row.name,
                rate_ppm=row.rate_ppm,
                mode=row.mode,
                taxes_shipping=row.taxes_shipping,
            )
            for row in db.execute(select(_TAX).where(_TAX.c.country.in_(countries)))
        }
        snap.duties = {
            row.country: row
            for row in db.execute(select(_DUTY).where(_DUTY.c.country.in_(countries)))
        }
    p = _PROMOTIONS
    promos = db.execute(
        select(p, Category.__table__.c.path)
        .outerjoin(Category.__table__, Category.__table__.c.id == p.c.category_id)
        .where(
            or_(
                and_(
                    p.c.code.is_(None),
                    p.c.active.is_(True),
                    or_(p.c.starts_at.is_(None), p.c.starts_at <= now),
                    or_(p.c.ends_at.is_(None), p.c.ends_at > now),
                ),
                p.c.code.in_(codes) if codes else false(),
            )
        )
        .order_by(p.c.id)
    ).all()
    for row in promos:
        if row.code is None:
            snap.automatic.append(_promo(row, row.path))
        else:
            snap.coupons[row.code] = (row, row.path)
    limited = [r.id for r, _ in snap.coupons.values() if r.max_uses_per_customer is not None]
    if limited and users:
        u = _USAGE
        snap.customer_uses = {
            (row.promotion_id, row.user_id): row.uses
            for row in db.execute(
                select(u).where(u.c.promotion_id.in_(limited), u.c.user_id.in_(users))
            )
        }
    return snap
