"""The backend-neutral search interface: requests, responses and the ``SearchBackend`` contract.

The serving layer only talks to these types, so switching tantivy for Elasticsearch is a
configuration change, not a code change.
"""

from __future__ import annotations

import abc
import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from models.search.documents import ProductDocument
from models.search.errors import QueryError

SortOrder = Literal["relevance", "price_asc", "price_desc", "newest", "rating"]
SORTS: tuple[str, ...] = ("relevance", "price_asc", "price_desc", "newest", "rating")
MAX_PAGE_SIZE = 100
MAX_OFFSET = 10_000

#: Default price buckets in minor units: (label, from inclusive, to exclusive or None).
DEFAULT_PRICE_RANGES: tuple[tuple[str, int | None, int | None], ...] = (
    ("under 25", None, 2_500),
    ("25-50", 2_500, 5_000),
    ("50-100", 5_000, 10_000),
    ("100-250", 10_000, 25_000),
    ("250+", 25_000, None),
)


@dataclass(frozen=True, slots=True)
class LiveState:
    """Fast-changing product state owned by the shop database, joined at serve time."""

    price: int | None = None
    available: bool | None = None
    archived: bool = False


#: Supplied by the serving layer: product ids → their current state (missing ids = unchanged).
LiveDataProvider = Callable[[Sequence[str]], Mapping[str, LiveState]]


@dataclass(slots=True)
class SearchRequest:
    """What the user asked for. Filters are exact; ``cursor`` overrides ``page``."""

    query: str = ""
    brands: Sequence[str] = ()
    category_id: str | None = None
    attributes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    price_min: int | None = None
    price_max: int | None = None
    in_stock: bool | None = None
    sort: str = "relevance"
    page: int = 1
    page_size: int = 20
    cursor: str | None = None
    facets: bool = True
    highlight: bool = True
    rerank: bool = True
    #: Relevance order (and browsing) puts products out of stock after those in stock, within
    #: the reranked window; they stay in the results, the total and the facets.
    demote_out_of_stock: bool = True
    #: How many top candidates the rerank and the stock demotion reorder (None: the engine's
    #: window, 200 for tantivy). Type-ahead asks for a few products and a shallow window.
    window: int | None = None

    def validate(self) -> None:
        """Reject impossible requests with ``QueryError`` (a ``ValueError``) → HTTP 400."""
        if self.sort not in SORTS:
            raise QueryError(f"unknown sort {self.sort!r}; choose one of {', '.join(SORTS)}")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise QueryError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if self.page < 1:
            raise QueryError("page starts at 1")
        lo, hi = self.price_min, self.price_max
        if lo is not None and hi is not None and lo > hi:
            raise QueryError("price_min is greater than price_max")
        if self.window is not None and self.window < 1:
            raise QueryError("window must be at least 1")
        if self.offset > MAX_OFFSET:
            raise QueryError(f"cannot page beyond {MAX_OFFSET} results; refine the query")

    def fingerprint(self) -> str:
        """Hash of everything that defines the result list, so a cursor can't cross queries."""
        key = json.dumps(
            [
                self.query,
                sorted(self.brands),
                self.category_id,
                sorted((k, sorted(v)) for k, v in self.attributes.items()),
                self.price_min,
                self.price_max,
                self.in_stock,
                self.sort,
                self.page_size,
                self.demote_out_of_stock,
                self.window,
            ],
            default=str,
        )
        return hashlib.sha1(key.encode()).hexdigest()[:12]

    @property
    def offset(self) -> int:
        """Zero-based index of the first hit on the requested page or cursor."""
        if self.cursor:
            return decode_cursor(self.cursor, self.fingerprint())
        return (self.page - 1) * self.page_size


def encode_cursor(offset: int, fingerprint: str) -> str:
    """Opaque cursor: the next offset bound to the request fingerprint."""
    raw = json.dumps({"o": offset, "f": fingerprint}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> int:
    """Read a cursor back; reject garbage and cursors minted for another query."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset, owner = int(data["o"]), str(data["f"])
    except (ValueError, KeyError, TypeError) as exc:
        raise QueryError("invalid cursor") from exc
    if owner != fingerprint or offset < 0:
        raise QueryError("cursor belongs to a different query")
    return offset


@dataclass(slots=True)
class Hit:
    """One result row; ``price``/``in_stock`` already reflect live data when a provider is set."""

    product_id: str
    score: float
    title: str
    brand: str
    category_path: str
    price: int
    in_stock: bool
    rating: float
    highlight: str = ""


@dataclass(slots=True)
class FacetValue:
    """One facet bucket: the value to filter on, a label to show, and how many results match."""

    value: str
    count: int
    label: str = ""


@dataclass(slots=True)
class SearchResponse:
    """A page of hits plus facets, the total match count and optional spelling help."""

    hits: list[Hit]
    total: int
    facets: dict[str, list[FacetValue]] = field(default_factory=dict)
    did_you_mean: str | None = None
    next_cursor: str | None = None
    relaxed: bool = False


class SearchBackend(abc.ABC):
    """What every engine must do. Implementations: tantivy (default) and Elasticsearch."""

    @abc.abstractmethod
    def build(self, documents: Iterable[ProductDocument]) -> None:
        """Index ``documents`` from scratch into this backend's storage."""

    @abc.abstractmethod
    def search(self, request: SearchRequest) -> SearchResponse:
        """Answer a request. Raises ``QueryError`` for bad input, never parser errors."""

    @abc.abstractmethod
    def suggest(self, prefix: str, limit: int = 8) -> list[str]:
        """Completions for what the user is typing, most common first."""

    @abc.abstractmethod
    def update_documents(self, documents: Iterable[ProductDocument]) -> None:
        """Insert or replace documents by ``product_id``; visible to the next search."""

    @abc.abstractmethod
    def delete_documents(self, product_ids: Iterable[str]) -> None:
        """Remove documents by ``product_id``."""

    def set_live_data(self, provider: LiveDataProvider | None) -> None:
        """Install the serve-time join for price, availability and archived state."""
        self.live_data = provider

    live_data: LiveDataProvider | None = None
