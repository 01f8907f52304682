"""The totals of one order, computed from already-loaded rows: no database, no clock.

Order of the steps (each documented in ``docs/pricing.md``):

1. **Goods**: unit price × quantity per line; catalog prices are what the shopper sees.
2. **Automatic promotions** (by category): each line gets the best one whose category is the
   line's or an ancestor of it, as a percentage of that line, rounded half up per line (it is
   shown per line). They do not stack with each other.
3. **Coupon** (at most one): on the goods after automatic discounts; a minimum spend is
   measured there too. Percent: rounded half up on that amount; fixed: at most that amount;
   free shipping: the chosen option's price is waived.
4. **Shipping**: base + per started kilogram; free from the option's threshold, measured on the
   goods after every discount.
5. **Tax**, once per order: on the goods after discounts plus shipping when the destination
   taxes it. ``inclusive`` (VAT): the part of that amount the tax makes up, the total does not
   change; ``exclusive`` (sales tax): added on top. One rounding per order, not per line, so a
   line of 3 × 0.99 and three lines of 0.99 owe the same tax.
6. **Duty**, cross-border only: on the customs value (goods after discounts, without an
   inclusive tax they contain), when it exceeds the destination's de-minimis threshold.

total = goods − discounts + shipping + duty (+ tax when exclusive). Every step is an integer
computation rounded half up (``money.py`` says why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from serving.core.errors import Unprocessable

from .money import BP, PPM, contained_tax, share, started_kilograms


class PricingError(Unprocessable):
    """An order that cannot be priced (no shipping option, a coupon that does not apply):
    a 422 problem with a ``code``, raised before anything is written."""

    def __init__(self, detail: str, *, code: str, **extensions: Any) -> None:
        super().__init__(detail, code=code, **extensions)
        self.code = code


@dataclass(frozen=True)
class Line:
    product_id: int
    title: str
    quantity: int
    unit_price_minor: int
    category_path: str
    weight_g: int


@dataclass(frozen=True)
class ShippingOption:
    speed: str
    base_minor: int
    per_kg_minor: int
    free_from_minor: int | None
    max_weight_g: int | None
    min_days: int
    max_days: int

    def price(self, weight_g: int, goods_after_discounts: int) -> int:
        if self.free_from_minor is not None and goods_after_discounts >= self.free_from_minor:
            return 0
        return self.base_minor + self.per_kg_minor * started_kilograms(weight_g)

    def carries(self, weight_g: int) -> bool:
        return self.max_weight_g is None or weight_g <= self.max_weight_g


@dataclass(frozen=True)
class Tax:
    name: str
    rate_ppm: int
    mode: str  # "inclusive" | "exclusive" | "none"
    taxes_shipping: bool


NO_TAX = Tax(name="", rate_ppm=0, mode="none", taxes_shipping=False)


@dataclass(frozen=True)
class Duty:
    rate_ppm: int
    de_minimis_minor: int


@dataclass(frozen=True)
class Promo:
    id: int
    code: str | None
    name: str
    kind: str  # "percent" | "fixed" | "free_shipping"
    percent_bp: int
    amount_minor: int
    currency: str
    min_subtotal_minor: int
    category_path: str | None

    def covers(self, category_path: str) -> bool:
        """Whether the promotion's category is ``category_path`` or one of its ancestors."""
        if self.category_path is None:
            return True
        return category_path == self.category_path or category_path.startswith(
            self.category_path + "/"
        )


@dataclass
class Quote:
    currency: str
    country: str
    lines: list[dict[str, Any]]
    goods_minor: int
    discount_minor: int
    discounts: list[dict[str, Any]]
    weight_g: int
    shipping_speed: str
    shipping_minor: int
    shipping_options: list[dict[str, Any]]
    tax: dict[str, Any]
    tax_minor: int
    duty_minor: int
    customs_value_minor: int
    total_minor: int
    redemptions: list[dict[str, Any]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """The quote as the API shows it (``redemptions`` is the checkout's own)."""
        return {
            "currency": self.currency,
            "country": self.country,
            "lines": self.lines,
            "goods_minor": self.goods_minor,
            "discount_minor": self.discount_minor,
            "discounts": self.discounts,
            "weight_g": self.weight_g,
            "shipping_speed": self.shipping_speed,
            "shipping_minor": self.shipping_minor,
            "shipping_options": self.shipping_options,
            "tax": self.tax,
            "tax_minor": self.tax_minor,
            "duty_minor": self.duty_minor,
            "customs_value_minor": self.customs_value_minor,
            "total_minor": self.total_minor,
        }


def _automatic_discounts(
    lines: list[Line], automatic: list[Promo], currency: str, goods: int
) -> tuple[list[int], dict[int, tuple[Promo, int]]]:
    per_line: list[int] = []
    used: dict[int, tuple[Promo, int]] = {}
    for line in lines:
        total = line.unit_price_minor * line.quantity
        best: tuple[int, Promo] | None = None
        for promo in automatic:
            if promo.currency != currency or goods < promo.min_subtotal_minor:
                continue
            if promo.kind != "percent" or not promo.covers(line.category_path):
                continue
            amount = share(total, promo.percent_bp, BP)
            if best is None or amount > best[0] or (amount == best[0] and promo.id < best[1].id):
                best = (amount, promo)
        if best is None or best[0] == 0:
            per_line.append(0)
            continue
        per_line.append(best[0])
        promo = best[1]
        previous = used.get(promo.id, (promo, 0))[1]
        used[promo.id] = (promo, previous + best[0])
    return per_line, used


def _coupon_discount(coupon: Promo, base: int, currency: str) -> int:
    if coupon.currency != currency:
        raise PricingError(
            f"Coupon {coupon.code} is for orders in {coupon.currency}, this one is in {currency}",
            code="coupon_currency",
        )
    if base < coupon.min_subtotal_minor:
        raise PricingError(
            f"Coupon {coupon.code} needs a spend of at least {coupon.min_subtotal_minor} "
            f"minor units ({currency}); the goods come to {base}",
            code="coupon_min_spend",
            min_subtotal_minor=coupon.min_subtotal_minor,
            goods_minor=base,
        )
    if coupon.kind == "percent":
        return share(base, coupon.percent_bp, BP)
    if coupon.kind == "fixed":
        return min(coupon.amount_minor, base)
    return 0  # free shipping: applied to the shipping below


def compute_quote(
    *,
    lines: list[Line],
    currency: str,
    country: str,
    speed: str | None,
    options: list[ShippingOption],
    tax: Tax,
    duty: Duty | None,
    coupon: Promo | None,
    automatic: list[Promo],
) -> Quote:
    """Price an order; raises :class:`PricingError` when it cannot be shipped or the coupon
    does not apply. ``speed`` None picks the cheapest option (then the fastest)."""
    goods = sum(line.unit_price_minor * line.quantity for line in lines)
    weight = sum(line.weight_g * line.quantity for line in lines)

    per_line, auto_used = _automatic_discounts(lines, automatic, currency, goods)
    after_auto = goods - sum(per_line)
    coupon_minor = _coupon_discount(coupon, after_auto, currency) if coupon else 0
    goods_after = after_auto - coupon_minor

    carried = [o for o in options if o.carries(weight)]
    if not carried:
        raise PricingError(
            f"No shipping option reaches {country} for a parcel of {weight} g in {currency}",
            code="no_shipping_option",
            country=country,
            weight_g=weight,
        )
    priced = sorted(
        ((o.price(weight, goods_after), o) for o in carried),
        key=lambda pair: (pair[0], pair[1].max_days, pair[1].speed),
    )
    if speed is None:
        shipping, chosen = priced[0]
    else:
        match = [pair for pair in priced if pair[1].speed == speed]
        if not match:
            raise PricingError(
                f"Shipping speed {speed!r} is not offered to {country}",
                code="shipping_speed_unavailable",
                speeds=[o.speed for _, o in priced],
            )
        shipping, chosen = match[0]
    waived = 0
    if coupon is not None and coupon.kind == "free_shipping":
        waived, shipping = shipping, 0

    tax_base = goods_after + (shipping if tax.taxes_shipping else 0)
    if tax.mode == "inclusive":
        tax_minor = contained_tax(tax_base, tax.rate_ppm)
        goods_tax = contained_tax(goods_after, tax.rate_ppm)
    elif tax.mode == "exclusive":
        tax_minor = share(tax_base, tax.rate_ppm, PPM)
        goods_tax = 0
    else:
        tax_minor = goods_tax = 0

    customs_value = goods_after - goods_tax
    duty_minor = 0
    if duty is not None and customs_value > duty.de_minimis_minor:
        duty_minor = share(customs_value, duty.rate_ppm, PPM)

    total = goods_after + shipping + duty_minor + (tax_minor if tax.mode == "exclusive" else 0)

    discounts = [
        {
            "promotion_id": promo.id,
            "code": None,
            "name": promo.name,
            "kind": promo.kind,
            "discount_minor": amount,
        }
        for promo, amount in auto_used.values()
    ]
    if coupon is not None:
        discounts.append(
            {
                "promotion_id": coupon.id,
                "code": coupon.code,
                "name": coupon.name,
                "kind": coupon.kind,
                "discount_minor": coupon_minor if coupon.kind != "free_shipping" else waived,
            }
        )
    return Quote(
        currency=currency,
        country=country,
        lines=[
            {
                "product_id": line.product_id,
                "title": line.title,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
                "line_total_minor": line.unit_price_minor * line.quantity,
                "discount_minor": discount,
            }
            for line, discount in zip(lines, per_line, strict=True)
        ],
        goods_minor=goods,
        discount_minor=goods - goods_after,
        discounts=discounts,
        weight_g=weight,
        shipping_speed=chosen.speed,
        shipping_minor=shipping,
        shipping_options=[
            {
                "speed": o.speed,
                "price_minor": price,
                "min_days": o.min_days,
                "max_days": o.max_days,
            }
            for price, o in priced
        ],
        tax={
            "name": tax.name,
            "mode": tax.mode,
            "rate_ppm": tax.rate_ppm,
            "base_minor": tax_base,
            "included": tax.mode == "inclusive",
        },
        tax_minor=tax_minor,
        duty_minor=duty_minor,
        customs_value_minor=customs_value if duty is not None else 0,
        total_minor=total,
        redemptions=[
            {
                "promotion_id": d["promotion_id"],
                "code": d["code"],
                "discount_minor": d["discount_minor"],
            }
            for d in discounts
        ],
    )
