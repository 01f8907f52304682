"""Recommendation responses: ranked products plus the ids clients log impressions with."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RecItem(BaseModel):
    """A product to show, with its current price and stock."""

    product_id: int
    score: float = Field(description="Higher is better; comparable within one response only")
    title: str
    price_minor: int
    currency: str
    image_url: str | None
    available: int = Field(description="Units that can be bought right now (always > 0)")


class Recommendations(BaseModel):
    """Items plus what produced them; send ``rec_id`` back with rec_impression/rec_click."""

    items: list[RecItem]
    rec_id: str = Field(description="Unique per response")
    model_version: str = Field(description='"<model>:<version>", or "popular-db" without one')
    strategy: str = Field(
        description="model, model+fresh, session, popular, similar, bought-together, trending, "
        "category-popular; '+popular' when topped up from best sellers"
    )
