"""Order request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .common import LineQuantity, StrictId, Text


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: StrictId
    quantity: LineQuantity


class ShippingAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200)
    line1: Text = Field(min_length=1, max_length=200)
    line2: Text | None = Field(None, max_length=200)
    city: Text = Field(min_length=1, max_length=100)
    postal_code: Text = Field(min_length=1, max_length=20)
    country: str = Field(min_length=2, max_length=2, pattern="^[A-Za-z]{2}$")


class OrderCreate(BaseModel):
    """Checkout body; without ``items`` the signed-in user's cart is ordered."""

    model_config = ConfigDict(extra="forbid")

    items: list[OrderItemIn] | None = Field(None, min_length=1, max_length=100)
    shipping_address: ShippingAddress
    payment_method: str = Field(pattern=r"^pm_[A-Za-z0-9]{1,60}$")
    # Pricing (docs/pricing.md): the option to ship with (the cheapest when omitted) and at
    # most one coupon; the totals are those of POST /api/v1/checkout/quote for the same order.
    shipping_speed: str | None = Field(None, pattern="^[a-z][a-z_]{1,19}$")
    coupon_code: str | None = Field(
        None, min_length=1, max_length=40, pattern=r"^\s*[A-Za-z0-9_-]+\s*$"
    )


class OrderLinePublic(BaseModel):
    product_id: int
    title: str
    quantity: int
    unit_price_minor: int
    line_total_minor: int


class PaymentSummary(BaseModel):
    status: str
    last4: str
    refunded_minor: int = 0
    decline_code: str | None = None


class ShipmentEventPublic(BaseModel):
    status: str
    description: str
    at: str


class ShipmentPublic(BaseModel):
    carrier: str
    tracking_number: str
    status: str
    events: list[ShipmentEventPublic]


class OrderPublic(BaseModel):
    id: str
    status: str
    items: list[OrderLinePublic]
    subtotal_minor: int
    shipping_minor: int
    total_minor: int
    currency: str
    shipping_address: dict[str, Any]
    created_at: str
    updated_at: str
    payment: PaymentSummary | None
    shipment: ShipmentPublic | None


class OrderPage(BaseModel):
    data: list[OrderPublic]
    count: int
    next_cursor: str | None


class HeldOrder(BaseModel):
    """An order the fraud rules held, with the rules that fired."""

    id: str
    user_id: int
    total_minor: int
    currency: str
    held_at: datetime
    reasons: str


class HeldOrders(BaseModel):
    data: list[HeldOrder]
    count: int
