"""Catalog request and response models: categories, products, stock, reviews."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .common import DbId, MoneyMinor, Text

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,119}$")]
AttrKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
AttrValue = Annotated[Text, StringConstraints(max_length=200)] | int | float | bool
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class CategoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: Slug
    name: Text = Field(min_length=1, max_length=200)
    parent_id: DbId | None = None


class CategoryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(None, min_length=1, max_length=200)


class CategoryPublic(BaseModel):
    id: int
    parent_id: int | None
    slug: str
    name: str
    path: str
    depth: int


class CategoriesPublic(BaseModel):
    data: list[CategoryPublic]
    count: int


class Stock(BaseModel):
    on_hand: int
    reserved: int
    available: int


class CategoryRef(BaseModel):
    id: int
    slug: str
    name: str
    path: str


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    title: Text = Field(min_length=1, max_length=300)
    description: Text = Field("", max_length=20_000)
    brand: Text = Field("", max_length=120)
    category_id: DbId
    price_minor: MoneyMinor
    currency: Currency = "EUR"
    attributes: dict[AttrKey, AttrValue] = Field(default_factory=dict, max_length=50)
    image_urls: list[Annotated[Text, StringConstraints(max_length=500)]] = Field(
        default_factory=list, max_length=20
    )
    initial_stock: int = Field(0, strict=True, ge=0, le=10_000_000)
    created_at: datetime | None = Field(
        None, description="Only honoured for bulk imports of historic catalogs by admins"
    )


class ProductBulkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    products: list[ProductCreate] = Field(min_length=1, max_length=500)


class ProductBulkCreated(BaseModel):
    created: int
    ids: list[int]


class ProductUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Text | None = Field(None, min_length=1, max_length=300)
    description: Text | None = Field(None, max_length=20_000)
    brand: Text | None = Field(None, max_length=120)
    category_id: DbId | None = None
    price_minor: MoneyMinor | None = None
    currency: Currency | None = None
    attributes: dict[AttrKey, AttrValue] | None = Field(None, max_length=50)
    image_urls: list[Annotated[Text, StringConstraints(max_length=500)]] | None = Field(
        None, max_length=20
    )
    status: Literal["active", "archived"] | None = None


class ProductPublic(BaseModel):
    id: int
    sku: str
    title: str
    description: str
    brand: str
    category: CategoryRef
    price_minor: int
    currency: str
    attributes: dict[str, str | int | float | bool]
    image_urls: list[str]
    status: str
    rating_avg: float
    rating_count: int
    stock: Stock
    created_at: datetime
    updated_at: datetime


class ProductsPublic(BaseModel):
    data: list[ProductPublic]
    count: int
    next_cursor: str | None


class StockAdjustment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delta: int = Field(strict=True, ge=-10_000_000, le=10_000_000)
    reason: Literal["restock", "adjustment", "damage", "return", "count_correction"] = "adjustment"
    note: Text = Field("", max_length=500)


class StockMovementPublic(BaseModel):
    id: int
    product_id: int
    delta_on_hand: int
    delta_reserved: int
    reason: str
    actor_user_id: int | None
    order_id: str | None
    note: str
    created_at: datetime


class StockMovementsPublic(BaseModel):
    data: list[StockMovementPublic]
    count: int
    stock: Stock
    next_cursor: str | None


class ReviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(strict=True, ge=1, le=5)
    title: Text = Field("", max_length=200)
    body: Text = Field("", max_length=5000)


class ReviewPublic(BaseModel):
    id: int
    product_id: int
    user_id: int
    author: str
    rating: int
    title: str
    body: str
    created_at: datetime


class ReviewsPublic(BaseModel):
    data: list[ReviewPublic]
    count: int
    rating_avg: float
    rating_count: int
    next_cursor: str | None
