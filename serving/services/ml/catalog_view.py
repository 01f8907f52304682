"""The catalog as search and recommendations see it: categories and live product state.

* ``CategoryIndex``: every category by id, slug and path (facets, filters, descendants);
* ``ProductInfoCache`` is the serve-time join for price, stock, archived state and display
  fields (title, image), cached for about a second because every search and every
  recommendation needs it and the database must not see one query per hit;
* ``serving.lifecycle.shared_catalog`` gives search and recommendations one of each per app,
  so a product fetched for a search result is not fetched again for the carousel beside it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import namedtuple
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, select

from models.search.api import LiveState
from serving.db.tables import Category

#: Orders in these states never became sales; they do not count towards popularity.
NOT_SOLD = ("cancelled", "failed", "expired", "payment_failed")


# ---------------------------------------------------------------- categories


@dataclass(frozen=True, slots=True)
class CategoryInfo:
    """One category with what search facets and filters need to show and match it."""

    id: int
    slug: str
    name: str
    path: str  # slugs joined by "/", the id search documents carry


class CategoryIndex:
    """All categories by id, slug and path, reloaded at most every ``ttl`` seconds.

    Categories change rarely but facets need their names on every search; one small query per
    ``ttl`` keeps labels right without touching the database per request.
    """

    def __init__(self, engine: Engine, ttl: float = 30.0) -> None:
        self.engine = engine
        self.ttl = ttl
        self._loaded_at = float("-inf")
        self._by_id: dict[int, CategoryInfo] = {}
        self._by_slug: dict[str, CategoryInfo] = {}
        self._by_path: dict[str, CategoryInfo] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._loaded_at < self.ttl:
            return
        with self._lock:
            if now - self._loaded_at < self.ttl:
                return
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(Category.id, Category.slug, Category.name, Category.path)
                ).all()
            infos = [CategoryInfo(r.id, r.slug, r.name, r.path) for r in rows]
            self._by_id = {c.id: c for c in infos}
            self._by_slug = {c.slug: c for c in infos}
            self._by_path = {c.path: c for c in infos}
            self._loaded_at = now

    def invalidate(self) -> None:
        """Force a reload on next use (a category was just created)."""
        self._loaded_at = float("-inf")

    def lookup(self, key: str) -> CategoryInfo | None:
        """A category by id or slug (the forms the product listing accepts too)."""
        self._refresh()
        found = self._by_id.get(int(key)) if key.isdigit() else self._by_slug.get(key)
        if found is None:
            self.invalidate()
            self._refresh()
            found = self._by_id.get(int(key)) if key.isdigit() else self._by_slug.get(key)
        return found

    def by_path(self, path: str) -> CategoryInfo | None:
        self._refresh()
        return self._by_path.get(path)

    def by_id(self, category_id: int) -> CategoryInfo | None:
        self._refresh()
        return self._by_id.get(category_id)

    def display_path(self, path: str) -> str:
        """``"electronics/audio"`` → ``"Electronics > Audio"`` (names, for people)."""
        self._refresh()
        parts = path.split("/")
        names = []
        for i in range(len(parts)):
            info = self._by_path.get("/".join(parts[: i + 1]))
            names.append(info.name if info else parts[i])
        return " > ".join(names)

    def descendant_ids(self, path: str) -> list[int]:
        """Ids of the category at ``path`` and every category below it."""
        self._refresh()
        return [c.id for p, c in self._by_path.items() if p == path or p.startswith(path + "/")]


# ---------------------------------------------------------------- live product state


@dataclass(frozen=True, slots=True)
class ProductInfo:
    """What a result row shows that the database owns (and changes at any moment)."""

    product_id: int
    title: str
    brand: str
    category_id: int
    price_minor: int
    currency: str
    available: int
    archived: bool
    image_url: str | None
    rating: float

    @property
    def sellable(self) -> bool:
        return not self.archived and self.available > 0


def product_info_from_row(r) -> ProductInfo:
    """A :class:`ProductInfo` from a products-join-inventory row (``available`` column)."""
    return ProductInfo(
        product_id=r.id,
        title=r.title,
        brand=r.brand or "",
        category_id=r.category_id,
        price_minor=int(r.price_minor),
        currency=r.currency,
        available=max(int(r.available), 0),
        archived=r.status != "active",
        image_url=(r.image_urls or [None])[0],
        rating=float(r.rating_avg or 0.0),
    )


#: Live state by id as plain SQL on a pooled DBAPI connection. This runs for most search and
#: recommendation requests (entries live a second); for the ~20 ids of a page SQLAlchemy's
#: execution (expanding IN, row and type processing) cost as much CPU as SQLite itself.
_PRODUCT_INFO_SQL = (
    "SELECT p.id, p.title, p.brand, p.category_id, p.price_minor, p.currency, p.status,"
    " p.image_urls, p.rating_avg, i.on_hand - i.reserved"
    " FROM products AS p JOIN inventory AS i ON i.product_id = p.id WHERE p.id "
)
#: The id list as one parameter, so the statement text never depends on how many ids.
_ID_MATCH = {
    "sqlite": ("IN (SELECT value FROM json_each(?))", json.dumps),
    "postgresql": ("= ANY(%s)", list),
}
_InfoRow = namedtuple(
    "_InfoRow",
    "id title brand category_id price_minor currency status image_urls rating_avg available",
)


class ProductInfoCache:
    """Per-product state from the database, each entry kept for ``ttl`` seconds.

    Hits of one search or one carousel are fetched in a single ``IN`` query on a bare
    connection (a Session costs several times more); popular products stay cached, so under
    load most requests never reach the database, and nothing shown is older than ``ttl``.
    """

    def __init__(self, engine: Engine, ttl: float = 1.0, max_entries: int = 200_000) -> None:
        self.engine = engine
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict[int, tuple[float, ProductInfo | None]] = {}
        self._lock = threading.Lock()

    def get(self, product_ids: Iterable[int]) -> dict[int, ProductInfo]:
        """Current info for the ids that exist (unknown ids are simply absent)."""
        ids = list(dict.fromkeys(int(p) for p in product_ids))
        now = time.monotonic()
        found: dict[int, ProductInfo] = {}
        missing: list[int] = []
        data = self._data
        for pid in ids:
            entry = data.get(pid)
            if entry is not None and now - entry[0] < self.ttl:
                if entry[1] is not None:
                    found[pid] = entry[1]
            else:
                missing.append(pid)
        if missing:
            fetched = self._fetch(missing)
            with self._lock:
                if len(self._data) + len(missing) > self.max_entries:
                    self._data = {}
                for pid in missing:
                    info = fetched.get(pid)
                    self._data[pid] = (now, info)
                    if info is not None:
                        found[pid] = info
        return found

    def invalidate(self, product_ids: Iterable[int]) -> None:
        """Forget entries (tests and writers that know something just changed)."""
        with self._lock:
            for pid in product_ids:
                self._data.pop(int(pid), None)

    def _fetch(self, ids: list[int]) -> dict[int, ProductInfo]:
        match, encode = _ID_MATCH[self.engine.dialect.name]
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(_PRODUCT_INFO_SQL + match, (encode(ids),))
                rows = cursor.fetchall()
            finally:
                cursor.close()
        finally:
            conn.close()  # back to the pool, which rolls back whatever the read began
        infos = {}
        for r in rows:
            urls = json.loads(r[7]) if isinstance(r[7], str) else r[7]  # SQLite: JSON text
            info = product_info_from_row(_InfoRow(*r[:7], urls, *r[8:]))
            infos[info.product_id] = info
        return infos

    def live_state(self, product_ids: Sequence[str]) -> Mapping[str, LiveState]:
        """The search backends' ``LiveDataProvider``: ids are strings there.

        A product deleted from the database counts as archived, so it can never be shown.
        """
        numeric = [int(p) for p in product_ids if str(p).isdigit()]
        infos = self.get(numeric)
        out: dict[str, LiveState] = {}
        for pid in product_ids:
            info = infos.get(int(pid)) if str(pid).isdigit() else None
            if info is None:
                out[str(pid)] = LiveState(archived=True)
            else:
                out[str(pid)] = LiveState(
                    price=info.price_minor, available=info.available > 0, archived=info.archived
                )
        return out
