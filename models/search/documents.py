"""The product document that every search backend indexes.

Only slowly changing text and attributes belong here; price and stock are kept as a snapshot for
filtering, faceting and sorting, and are corrected at serve time by the live-data provider.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CATEGORY_SEPARATOR = ">"


#: How the shop database and the warehouse spell a path: category slugs joined by "/".
SLUG_SEPARATOR = "/"


def split_category_path(path: str) -> list[str]:
    """Split ``"a > b > c"`` (display names) or ``"a/b/c"`` (slugs) into clean levels.

    Both spellings reach the index: the serving layer's own build passes display names, the
    pipelines' build passes the warehouse's slug path. A path without ``>`` is read as slugs,
    so a display name containing "/" ("Bath/Shower") is only split when it has no ``>`` either.
    """
    path = path or ""
    separator = CATEGORY_SEPARATOR if CATEGORY_SEPARATOR in path else SLUG_SEPARATOR
    return [part.strip() for part in path.split(separator) if part.strip()]


def category_ids_for(path: str) -> list[str]:
    """Ids of the category and every ancestor, so filtering on a parent matches all children.

    ``"Electronics > Audio"`` and ``"electronics/audio"`` both give
    ``["electronics", "electronics/audio"]``: without the ancestors, a category filter or
    facet only ever matched leaf categories (issue 20: ``/c/electronics`` showed nothing).
    """
    ids: list[str] = []
    prefix = ""
    for level in split_category_path(path):
        slug = "-".join(level.lower().split())
        prefix = f"{prefix}/{slug}" if prefix else slug
        ids.append(prefix)
    return ids


def _epoch_seconds(value: Any) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp())
    if isinstance(value, (int, float)):
        return int(value)
    if hasattr(value, "timestamp"):
        return int(value.timestamp())
    return int(datetime.fromisoformat(str(value)).replace(tzinfo=UTC).timestamp())


@dataclass(slots=True)
class ProductDocument:
    """One product as the search index sees it.

    ``price`` is in minor units (cents); ``created_at`` is stored as epoch seconds. The priors
    (``popularity``, ``ctr_prior``, ``conversion_prior``) come from the warehouse and feed ranking.
    """

    product_id: str
    title: str
    brand: str = ""
    category_path: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    description: str = ""
    price: int = 0
    in_stock: bool = True
    rating: float = 0.0
    created_at: int = 0
    popularity: float = 0.0
    ctr_prior: float = 0.0
    conversion_prior: float = 0.0
    category_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.product_id = str(self.product_id)
        self.created_at = _epoch_seconds(self.created_at)
        self.attributes = {str(k).strip(): str(v).strip() for k, v in self.attributes.items()}
        if not self.category_ids:
            self.category_ids = category_ids_for(self.category_path)

    @property
    def signature(self) -> int:
        """A stable 63-bit hash of everything indexed except price and stock.

        Lets an index tell a price or stock change (which cannot change which queries match
        the product) from a text change (which can), so it invalidates only what it must.
        """
        parts = (
            self.title,
            self.brand,
            self.category_path,
            "|".join(self.category_ids),
            self.attribute_text,
            self.description,
            repr((self.rating, self.created_at, self.popularity)),
            repr((self.ctr_prior, self.conversion_prior)),
        )
        digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
        return (int.from_bytes(digest, "big") >> 1) or 1  # 0 means "unknown"

    @property
    def attribute_text(self) -> str:
        """Attributes flattened to searchable text (``"color black size m"``)."""
        return " ".join(f"{k} {v}" for k, v in self.attributes.items())

    @property
    def attribute_pairs(self) -> list[str]:
        """Exact ``key=value`` keywords used for attribute filters and facets."""
        return [f"{k}={v}" for k, v in self.attributes.items()]

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> ProductDocument:
        """Build from a loosely typed row (CSV/Parquet), tolerating missing optional columns."""

        def text(name: str) -> str:
            value = row.get(name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return ""
            return str(value)

        def number(name: str, default: float = 0.0) -> float:
            value = row.get(name)
            try:
                result = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return default
            return default if math.isnan(result) else result

        attributes = row.get("attributes") or {}
        if isinstance(attributes, str):
            attributes = parse_attribute_text(attributes)
        elif not isinstance(attributes, Mapping):
            attributes = {}
        in_stock = row.get("in_stock", True)
        return cls(
            product_id=text("product_id"),
            title=text("title"),
            brand=text("brand"),
            category_path=text("category_path") or text("category"),
            attributes=dict(attributes),
            description=text("description"),
            price=int(round(number("price"))),
            in_stock=bool(True if in_stock is None else in_stock),
            rating=number("rating"),
            created_at=row.get("created_at") or 0,
            popularity=number("popularity"),
            ctr_prior=number("ctr_prior"),
            conversion_prior=number("conversion_prior"),
        )


def parse_attribute_text(text: str) -> dict[str, str]:
    """Parse ``"color: black; size: m"`` (or ``=``) into a dict; bare words become ``tag``s."""
    result: dict[str, str] = {}
    tags: list[str] = []
    for part in text.replace("|", ";").replace(",", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        for sep in (":", "="):
            if sep in part:
                key, value = part.split(sep, 1)
                result[key.strip()] = value.strip()
                break
        else:
            tags.append(part)
    if tags:
        result["tag"] = " ".join(tags)
    return result


def documents_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[ProductDocument]:
    """Convert catalog rows to documents, skipping rows without an id or a title."""
    docs = [ProductDocument.from_mapping(row) for row in rows]
    return [doc for doc in docs if doc.product_id and doc.title]
