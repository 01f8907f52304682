"""Cart request and response models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CartItemAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: int = Field(ge=1, le=2**31 - 1)
    quantity: int = Field(1, ge=1, le=1000)


class CartItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(ge=0, le=1000, description="0 removes the line")


class CartLine(BaseModel):
    product_id: int
    title: str
    quantity: int
    unit_price_minor: int
    currency: str
    line_total_minor: int
    available: bool


class CartPublic(BaseModel):
    items: list[CartLine]
    subtotal_minor: int
    currency: str
    item_count: int
