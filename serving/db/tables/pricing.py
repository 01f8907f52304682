"""What an order costs beyond its goods: shipping rates, tax and duty rates, promotions, and the
charges fixed on each order.

Rates are rows a shop edits through the admin API, not settings: a VAT change or a new
shipping zone is data, and the order keeps the figures it was charged (``order_charges``), so
editing a rate never changes a placed order.

Percentages are integers: tax and duty rates in parts per million (19 % = 190 000, a US
sales tax of 8.875 % = 88 750, which basis points cannot hold), promotion percentages in
basis points (15 % = 1 500). Money is integer minor units, like everywhere in the shop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class ShippingRate(Base):
    """One shipping option to one destination: ``country`` is ISO 3166 alpha-2, or ``*`` for
    every country without a row of its own for that speed and currency.

    Price = ``base_minor`` + ``per_kg_minor`` × started kilograms of the parcel (carriers bill
    per started kilogram), free when the goods after discounts reach ``free_from_minor``.
    """

    __tablename__ = "shipping_rates"
    __table_args__ = (
        UniqueConstraint(
            "country", "speed", "currency", name="uq_shipping_rates_country_speed_currency"
        ),
        CheckConstraint("base_minor >= 0 AND per_kg_minor >= 0", name="price_non_negative"),
        CheckConstraint("min_days >= 0 AND max_days >= min_days", name="days_ordered"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    speed: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    base_minor: Mapped[int] = mapped_column(BigInteger)
    per_kg_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    free_from_minor: Mapped[int | None] = mapped_column(BigInteger)
    max_weight_g: Mapped[int | None] = mapped_column(Integer)
    min_days: Mapped[int] = mapped_column(Integer)
    max_days: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime]


class TaxRate(Base):
    """The tax of one destination country.

    ``inclusive``: catalog prices already contain it (VAT style), the tax is the part of the
    price it makes up and the total does not grow. ``exclusive``: it is added on top (sales-tax
    style).
    """

    __tablename__ = "tax_rates"
    __table_args__ = (
        CheckConstraint("rate_ppm >= 0 AND rate_ppm <= 1000000", name="rate_range"),
        CheckConstraint("mode IN ('inclusive', 'exclusive')", name="mode_known"),
    )

    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    rate_ppm: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(10))
    taxes_shipping: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime]


class DutyRate(Base):
    """Customs duty on goods sent to ``country`` from another country (the shop's origin is a
    setting). Goods whose customs value is at most ``de_minimis_minor`` pay none."""

    __tablename__ = "duty_rates"
    __table_args__ = (CheckConstraint("rate_ppm >= 0 AND rate_ppm <= 1000000", name="rate_range"),)

    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    rate_ppm: Mapped[int] = mapped_column(Integer)
    de_minimis_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime]


class ProductWeight(Base):
    """Shipping weight of a product; products without a row weigh the configured default."""

    __tablename__ = "product_weights"
    __table_args__ = (CheckConstraint("weight_g > 0", name="weight_positive"),)

    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    weight_g: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class Promotion(Base):
    """A coupon (``code`` set) or an automatic promotion (``code`` NULL, by category).

    ``uses`` counts redemptions held by live orders; a checkout takes one with a conditional
    UPDATE (``uses < max_uses``), so the limit holds however many checkouts run at once, and a
    compensated order gives it back.
    """

    __tablename__ = "promotions"
    __table_args__ = (
        CheckConstraint("kind IN ('percent', 'fixed', 'free_shipping')", name="kind_known"),
        CheckConstraint("percent_bp >= 0 AND percent_bp <= 10000", name="percent_range"),
        CheckConstraint("amount_minor >= 0 AND min_subtotal_minor >= 0", name="amounts"),
        CheckConstraint("max_uses IS NULL OR uses <= max_uses", name="uses_within_limit"),
        CheckConstraint("uses >= 0", name="uses_non_negative"),
        Index("ix_promotions_automatic", "active", "category_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored upper-case; unique among coupons (automatic promotions have none).
    code: Mapped[str | None] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    percent_bp: Mapped[int] = mapped_column(Integer, default=0)
    amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    min_subtotal_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    max_uses: Mapped[int | None] = mapped_column(Integer)
    max_uses_per_customer: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PromotionUsage(Base):
    """Live redemptions of one promotion by one customer (the per-customer limit)."""

    __tablename__ = "promotion_usage"
    __table_args__ = (CheckConstraint("uses >= 0", name="uses_non_negative"),)

    promotion_id: Mapped[int] = mapped_column(
        ForeignKey("promotions.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    uses: Mapped[int] = mapped_column(Integer, default=0)


class PromotionRedemption(Base):
    """One promotion applied to one order: ``held`` while the order lives, ``released`` when
    its compensation gave the use back. The lakehouse reads these as promotion facts."""

    __tablename__ = "promotion_redemptions"
    __table_args__ = (
        UniqueConstraint(
            "order_id", "promotion_id", name="uq_promotion_redemptions_order_promotion"
        ),
        Index("ix_promotion_redemptions_updated", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code: Mapped[str | None] = mapped_column(String(40))
    discount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OrderCharge(Base):
    """How an order's total was made up, fixed when it was placed (one row per order).

    ``orders.total_minor`` is what was charged: goods − discount + shipping + duty, plus the
    tax when it is exclusive. ``breakdown`` keeps the quote's detail (promotions applied, tax
    base, rate used) so a later rate edit never rewrites history.
    """

    __tablename__ = "order_charges"

    order_id: Mapped[str] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    country: Mapped[str] = mapped_column(String(2))
    shipping_speed: Mapped[str] = mapped_column(String(20))
    goods_minor: Mapped[int] = mapped_column(BigInteger)
    discount_minor: Mapped[int] = mapped_column(BigInteger)
    shipping_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    tax_mode: Mapped[str] = mapped_column(String(10))
    tax_rate_ppm: Mapped[int] = mapped_column(Integer)
    duty_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
