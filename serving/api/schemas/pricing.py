"""Request and response models of the pricing API: quotes and the rate tables admins edit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .common import MoneyMinor, StrictId, Text
from .orders import OrderItemIn

Country = Annotated[str, Field(min_length=2, max_length=2, pattern="^[A-Za-z]{2}$")]
Currency = Annotated[str, Field(pattern="^[A-Z]{3}$")]
Speed = Annotated[str, Field(pattern="^[a-z][a-z_]{1,19}$")]
CouponCode = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^\s*[A-Za-z0-9_-]+\s*$")]
Ppm = Annotated[int, Field(strict=True, ge=0, le=1_000_000)]
Count = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]
Days = Annotated[int, Field(strict=True, ge=0, le=365)]
Grams = Annotated[int, Field(strict=True, ge=1, le=1_000_000)]


class QuoteRequest(BaseModel):
    """What the shopper would order: ``items``, or else the caller's cart; where to
    (``country``, or ``address_id`` from the signed-in caller's address book, or else their
    default address); at what speed (cheapest when omitted) and with which coupon."""

    model_config = ConfigDict(extra="forbid")

    items: list[OrderItemIn] | None = Field(None, min_length=1, max_length=100)
    country: Country | None = None
    address_id: StrictId | None = None
    shipping_speed: Speed | None = None
    coupon_code: CouponCode | None = None


class QuoteLine(BaseModel):
    product_id: int
    title: str
    quantity: int
    unit_price_minor: int
    line_total_minor: int
    discount_minor: int


class QuoteDiscount(BaseModel):
    promotion_id: int
    code: str | None
    name: str
    kind: str
    discount_minor: int


class QuoteShippingOption(BaseModel):
    speed: str
    price_minor: int
    min_days: int
    max_days: int


class QuoteTax(BaseModel):
    name: str
    mode: str
    rate_ppm: int
    base_minor: int
    included: bool


class QuotePublic(BaseModel):
    currency: str
    country: str
    lines: list[QuoteLine]
    goods_minor: int
    discount_minor: int
    discounts: list[QuoteDiscount]
    weight_g: int
    shipping_speed: str
    shipping_minor: int
    shipping_options: list[QuoteShippingOption]
    tax: QuoteTax
    tax_minor: int
    duty_minor: int
    customs_value_minor: int
    total_minor: int


class TaxRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=40)
    rate_ppm: Ppm
    mode: Literal["inclusive", "exclusive"]
    taxes_shipping: bool = True


class DutyRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate_ppm: Ppm
    de_minimis_minor: MoneyMinor = 0
    currency: Currency


class ShippingRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    country: Annotated[str, Field(pattern="^([A-Za-z]{2}|\\*)$")]
    speed: Speed
    currency: Currency
    base_minor: MoneyMinor
    per_kg_minor: MoneyMinor = 0
    free_from_minor: MoneyMinor | None = None
    max_weight_g: Grams | None = None
    min_days: Days
    max_days: Days
    active: bool = True


class WeightIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weight_g: Grams


class PromotionIn(BaseModel):
    """A coupon (``code``) or, without a code, an automatic percentage off a category."""

    model_config = ConfigDict(extra="forbid")

    code: CouponCode | None = None
    name: Text = Field(min_length=1, max_length=200)
    kind: Literal["percent", "fixed", "free_shipping"]
    percent_bp: Annotated[int, Field(strict=True, ge=0, le=10_000)] = 0
    amount_minor: MoneyMinor = 0
    currency: Currency
    min_subtotal_minor: MoneyMinor = 0
    category_id: StrictId | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    max_uses: Count | None = None
    max_uses_per_customer: Count | None = None
    active: bool = True


class PromotionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(None, min_length=1, max_length=200)
    percent_bp: Annotated[int, Field(strict=True, ge=0, le=10_000)] | None = None
    amount_minor: MoneyMinor | None = None
    min_subtotal_minor: MoneyMinor | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    max_uses: Count | None = None
    max_uses_per_customer: Count | None = None
    active: bool | None = None


class PromotionPublic(BaseModel):
    id: int
    code: str | None
    name: str
    kind: str
    percent_bp: int
    amount_minor: int
    currency: str
    min_subtotal_minor: int
    category_id: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    max_uses: int | None
    max_uses_per_customer: int | None
    uses: int
    active: bool
    created_at: datetime
    updated_at: datetime
