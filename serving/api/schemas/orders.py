"""Order request and response models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: int = Field(ge=1, le=2**31 - 1)
    quantity: int = Field(ge=1, le=1000)


class ShippingAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(min_length=2, max_length=2, pattern="^[A-Za-z]{2}$")


class OrderCreate(BaseModel):
    """Checkout body; without ``items`` the signed-in user's cart is ordered."""

    model_config = ConfigDict(extra="forbid")

    items: list[OrderItemIn] | None = Field(None, min_length=1, max_length=100)
    shipping_address: ShippingAddress
    payment_method: str = Field(pattern=r"^pm_[A-Za-z0-9]{1,60}$")


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
