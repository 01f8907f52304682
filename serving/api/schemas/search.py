"""Search responses as the storefront and the synthetic shoppers consume them.

The shape is a contract with clients that already exist; these models document it in the
OpenAPI schema (handlers serialise with orjson directly, so validation costs nothing per hit).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class SearchHit(BaseModel):
    """One result with current price and stock (at most ``live_data_seconds`` old)."""

    product_id: int
    title: str
    brand: str
    category_path: str = Field(description='Category names, e.g. "Electronics > Audio"')
    price_minor: int
    currency: str
    available: int = Field(description="Units that can be bought right now")
    in_stock: bool
    rating: float
    image_url: str | None
    highlights: dict[str, str] = Field(
        description="HTML-escaped fields with matches wrapped in <mark>"
    )


class FacetBucket(BaseModel):
    """A value to filter on, what to call it, and how many results have it."""

    value: str
    label: str
    count: int


class SearchResults(BaseModel):
    """A page of hits, facets over all matches, and ids to attribute clicks with."""

    hits: list[SearchHit]
    total: int
    facets: dict[str, list[FacetBucket]] = Field(
        description="category, brand, price, in_stock and attr:<key> for attributes"
    )
    did_you_mean: str | None
    next_cursor: str | None
    search_id: str = Field(description="Send back with search_click events")
    ranker_version: str = Field(description='"bm25", "ltr:<version>" or "fallback"')
    index_version: str | None


class Suggestion(BaseModel):
    """A completion of the typed text, or a product to jump to."""

    text: str
    type: Literal["query", "product"]
    product_id: int | None = None


class Suggestions(BaseModel):
    suggestions: list[Suggestion]
