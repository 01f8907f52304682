"""What every visit of a run shares: the run's configuration, its counters and its context.

Kept apart from ``runner`` (which schedules the days) so that ``sessions`` (one visit) can use
the context without importing the scheduler that imports it.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

import numpy as np

from simulation import grammar, truth
from simulation.catalog import DEFAULT_START, Catalog
from simulation.client import Api
from simulation.queries import KeywordIndex, QuerySet
from simulation.shoppers import Population


@dataclass
class SimConfig:
    """What to simulate; the defaults are the demo shop's history."""

    seed: int = 7
    users: int = 2000
    products: int = 5000
    days: int = 30
    start: datetime = DEFAULT_START
    concurrency: int = 8
    load_concurrency: int = 8
    shard: int = 0
    shards: int = 1
    run_tag: str = ""
    trace: bool = False
    #: Wait up to this long for the server's search index before shopping (0: don't wait).
    search_wait_seconds: float = 30.0


@dataclass
class Stats:
    """Counters a run reports; shards' counters add up."""

    sessions: int = 0
    events: int = 0
    events_rejected: int = 0
    searches: int = 0
    zero_result_searches: int = 0
    rec_lists: int = 0
    clicks: int = 0
    product_views: int = 0
    add_to_carts: int = 0
    sessions_with_cart: int = 0
    abandoned_carts: int = 0
    checkouts: int = 0
    checkout_unavailable: int = 0
    sessions_with_order: int = 0
    orders: int = 0
    order_errors: int = 0
    declines: int = 0
    cancellations: int = 0
    stockouts: int = 0
    revenue_minor: int = 0
    registrations: int = 0
    logins: int = 0
    reviews: int = 0
    rating_sum: int = 0
    restocks: int = 0
    requests: int = 0
    products_created: int = 0
    wishlist_adds: int = 0
    coupon_orders: int = 0
    memberships: int = 0
    marketplace_orders: int = 0  # with a line of a third-party store
    multi_seller_orders: int = 0  # shipped by two or more (the shop counts as one)
    deliveries: int = 0  # orders the shop's nightly carrier delivered
    store_parcels_shipped: int = 0  # parcels the stores handed to the carrier
    returns_requested: int = 0
    returns_refunded: int = 0
    units_returned: int = 0

    def merge(self, other: Stats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def summary(self) -> dict[str, Any]:
        """The counters plus the ratios people ask about first."""
        out: dict[str, Any] = asdict(self)
        out["conversion_rate"] = self.sessions_with_order / max(1, self.sessions)
        out["cart_abandonment_rate"] = self.abandoned_carts / max(1, self.sessions_with_cart)
        out["zero_result_rate"] = self.zero_result_searches / max(1, self.searches)
        out["mean_rating"] = self.rating_sum / max(1, self.reviews)
        out["revenue"] = self.revenue_minor / 100
        return out


@dataclass
class Context:
    """Everything visits share: the API, the hidden world and the counters."""

    api: Api
    catalog: Catalog
    pop: Population
    queries: QuerySet
    keywords: KeywordIndex
    product_ids: list[int]  # catalog index -> server product id
    category_ids: dict[str, int]
    stats: Stats = field(default_factory=Stats)
    trace: list[tuple[Any, ...]] | None = None
    user_ids: dict[int, int] = field(default_factory=dict)
    sold: dict[int, int] = field(default_factory=dict)
    purchases: list[tuple[int, int]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    #: Server product id -> seller id of third-party products (absent: the shop's own).
    sellers: dict[int, int] = field(default_factory=dict)
    #: Returns this process's shoppers requested, for the shop's nightly handling.
    returns: list[str] = field(default_factory=list)
    #: Orders this process's shoppers placed, when, and their sellers (the nightly carrier's).
    parcels: list[tuple[str, datetime, frozenset[int]]] = field(default_factory=list)
    #: Seller id -> the store's sign-in, so the stores ship their own parcels.
    store_logins: dict[int, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index_of = {int(pid): i for i, pid in enumerate(self.product_ids)}
        self.sku_of_id = {int(pid): self.catalog.skus[i] for i, pid in enumerate(self.product_ids)}
        self.cat_cum = np.cumsum(self.pop.cat_aff, axis=1)
        self.zero_queries = [q for q, k in enumerate(self.queries.kind) if k == "zero"]
        self._utility_rows: dict[int, np.ndarray] = {}
        self._query_grades: dict[int, np.ndarray] = {}

    def utility(self, user: int, products: np.ndarray) -> np.ndarray:
        return self.utility_row(user)[products]

    def utility_row(self, user: int) -> np.ndarray:
        """U(user, p) for every product, computed once per user (a visit asks dozens of times;
        small numpy calls cost more than the arithmetic)."""
        row = self._utility_rows.get(user)
        if row is None:
            every = np.arange(len(self.catalog), dtype=np.int64)
            row = self._utility_rows[user] = truth.utility(self.pop, self.catalog, user, every)
        return row

    def query_grade_row(self, query: int) -> np.ndarray:
        """Every product's hidden grade for query ``query``, computed once per query."""
        row = self._query_grades.get(query)
        if row is None:
            row = self._query_grades[query] = truth.query_grades(self.catalog, self.queries, query)
        return row

    def trace_record(self, user: int, event: dict[str, Any]) -> tuple[Any, ...]:
        """An event with server-assigned ids replaced by SKUs, for reproducibility checks."""
        pid = event.get("product_id")
        props = dict(event.get("props") or {})
        if "results" in props:
            props["results"] = ",".join(
                self.sku_of_id.get(int(p), "?") for p in str(props["results"]).split(",") if p
            )
        search_id = event.get("search_id")
        return (
            user,
            event["event_id"],
            event["type"],
            event["client_ts"],
            event["session_id"],
            self.sku_of_id.get(int(pid)) if pid else None,
            event.get("query"),
            event.get("position"),
            search_id if search_id and search_id.startswith("cs-") else None,
            tuple(sorted((k, str(v)) for k, v in props.items() if k != "model_version")),
        )

    def review_text(self, rating: int, index: int, rng: random.Random) -> tuple[str, str]:
        """A short review whose tone matches the rating."""
        leaf = self.catalog.leaves[int(self.catalog.leaf[index])]
        noun = leaf.nouns[0]
        good = ("Love it", "Great value", "Exactly as described", "Would buy again")
        bad = ("Disappointed", "Not worth it", "Returned it", "Broke quickly")
        mid = ("It's okay", "Does the job", "Average")
        title = rng.choice(good if rating >= 4 else bad if rating <= 2 else mid)
        feature = rng.choice(leaf.features)
        if rating >= 4:
            has = grammar.verb(noun, "has", "have")
            body = f"{grammar.this(noun).capitalize()} {has} {feature} and it shows. Happy with it."
        elif rating <= 2:
            body = f"Expected more from {grammar.this(noun)}; {feature} was not what I hoped."
        else:
            body = (
                f"{grammar.with_article('decent ' + noun).capitalize()}. "
                f"{feature.capitalize()} {grammar.verb(feature, 'is', 'are')} fine, "
                "nothing special."
            )
        return title, body

    def address(self, user: int) -> dict[str, str]:
        cities = (("Berlin", "DE"), ("Lyon", "FR"), ("Porto", "PT"), ("Gdansk", "PL"))
        city, country = cities[user % len(cities)]
        return {
            "name": self.pop.names[user],
            "line1": f"{1 + user % 180} Market Street",
            "city": city,
            "postal_code": f"{10000 + user % 89999}",
            "country": country,
        }
