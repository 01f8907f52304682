"""Cart request and response models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .common import LineQuantity, StrictId


class CartItemAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: StrictId
    quantity: LineQuantity = 1


class CartItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(strict=True, ge=0, le=1000, description="0 removes the line")


class CartLine(BaseModel):
    product_id: int
    title: str
    quantity: int
    unit_price_minor: int
    currency: str
    line_total_minor: int
    available: bool


class CurrencySubtotal(BaseModel):
    currency: str
    subtotal_minor: int


class CartPublic(BaseModel):
    """``subtotal_minor`` and ``currency`` are null only for a cart that holds more than one
    currency (a product re-priced in another after it was added): ``subtotals`` then has one
    entry per currency, and nothing adds amounts of different currencies."""

    items: list[CartLine]
    subtotal_minor: int | None
    currency: str | None
    subtotals: list[CurrencySubtotal]
    item_count: int
