"""Request and response models of the address book and the wishlist."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .common import Text


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Text = Field("", max_length=40)
    name: Text = Field(min_length=1, max_length=200)
    line1: Text = Field(min_length=1, max_length=200)
    line2: Text | None = Field(None, max_length=200)
    city: Text = Field(min_length=1, max_length=100)
    postal_code: Text = Field(min_length=1, max_length=20)
    country: str = Field(min_length=2, max_length=2, pattern="^[A-Za-z]{2}$")
    is_default: bool = False


class AddressPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Text | None = Field(None, max_length=40)
    name: Text | None = Field(None, min_length=1, max_length=200)
    line1: Text | None = Field(None, min_length=1, max_length=200)
    line2: Text | None = Field(None, max_length=200)
    city: Text | None = Field(None, min_length=1, max_length=100)
    postal_code: Text | None = Field(None, min_length=1, max_length=20)
    country: str | None = Field(None, min_length=2, max_length=2, pattern="^[A-Za-z]{2}$")


class AddressPublic(BaseModel):
    id: int
    label: str
    name: str
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country: str
    is_default: bool
    created_at: str
    updated_at: str


class WishlistItemPublic(BaseModel):
    product_id: int
    title: str
    price_minor: int
    currency: str
    in_stock: bool
    added_at: str


class WishlistPublic(BaseModel):
    items: list[WishlistItemPublic]
