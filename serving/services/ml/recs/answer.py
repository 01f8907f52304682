"""A recommendation list as the JSON bytes every recommendation route answers with.

One definition for the routes and the personal fast path (``middleware/recs_fast_path.py``),
so both answer byte for byte alike. Built with orjson from plain dicts: pydantic validation of
the list cost more than building it (``Recommendations`` stays the documented schema).
"""

from __future__ import annotations

from typing import Literal, get_args

import orjson

from serving.services.ml.catalog_view import ProductInfo
from serving.services.ml.recs.service import RecsServing

#: Where a list is shown (the ``surface`` query parameter); counted per surface online.
Surface = Literal["home", "product", "cart", "search", "other"]
SURFACES = frozenset(get_args(Surface))


def answer_json(
    recs: RecsServing,
    items: list[tuple[int, ProductInfo, float]],
    strategy: str,
    version: str,
    surface: str,
) -> bytes:
    """The list; its ``rec_id`` names the surface and version (``RecIds``), so the
    impressions and clicks that echo it are counted per version and surface."""
    payload = {
        "items": [
            {
                "product_id": pid,
                "score": round(float(score), 6) if score == score else 0.0,  # NaN-safe
                "title": info.title,
                "price_minor": info.price_minor,
                "currency": info.currency,
                "image_url": info.image_url,
                "available": info.available,
            }
            for pid, info, score in items
        ],
        "rec_id": recs.rec_ids.new(surface, version),
        "model_version": version,
        "strategy": strategy,
    }
    return orjson.dumps(payload)
