"""Seed a benchmark database with the demo's synthetic catalog (simulation).

Why not ``_server.seed_catalog``: its titles all share the word "product", so nearly every
query matches nearly every document and a search benchmark measures facet counting over the
whole index rather than a shop. The synthetic catalog has real category, brand, attribute and
noun distributions (scales to 200,000 products), and the shoppers' query set comes with it.

Products go in through the same domain code as ``POST /api/v1/products/bulk``
(``catalog.create_products``, 500 per transaction), so rows, attributes, stock and the stock
ledger look exactly like an imported catalog; only the HTTP round-trips are skipped. That
takes about a CPU-minute per 100,000 products, so a seeded SQLite file is kept in the temp
directory (keyed by size, seed and schema revision) and copied for later runs.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from simulation.catalog import Catalog, generate_catalog

BATCH = 500


def seed_synthetic_catalog(database_url: str, products: int, seed: int = 7) -> Catalog:
    """Migrate ``database_url`` and import ``products`` synthetic products; returns the catalog."""
    from serving.core.config import Settings
    from serving.db import migrate
    from serving.db.engine import Database
    from serving.services.shop import catalog as catalog_service

    url = Settings(database_url=database_url).sqlalchemy_url
    migrate.upgrade(url)
    cat = generate_catalog(seed, products)
    db = Database(url)
    try:
        ids: dict[str, int] = {}
        with db.session(write=True) as session:
            for spec in cat.categories:
                created = catalog_service.create_category(
                    session, slug=spec.slug, name=spec.name, parent_id=ids.get(spec.parent or "")
                )
                ids[spec.slug] = int(created["id"])
        for start in range(0, len(cat), BATCH):
            items = []
            for i in range(start, min(start + BATCH, len(cat))):
                payload = cat.payload(i, ids[cat.leaf_slug(int(cat.leaf[i]))])
                payload["created_at"] = cat.created_at[i]
                items.append(payload)
            with db.session(write=True) as session:
                catalog_service.create_products(session, items=items, actor_user_id=None)
    finally:
        db.dispose()
    return cat


def seeded_sqlite(path: Path, products: int, seed: int = 7) -> Catalog:
    """A SQLite file at ``path`` holding the synthetic catalog (copied from the cache if any)."""
    from serving.db.migrate import head_revision

    cache = Path(tempfile.gettempdir()) / "storeloop-bench"
    cached = cache / f"synthetic-{products}-{seed}-{head_revision()}.db"
    if not cached.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        seed_synthetic_catalog(f"sqlite:///{partial}", products, seed)
        _checkpoint(partial)
        partial.replace(cached)
    shutil.copyfile(cached, path)
    return generate_catalog(seed, products)


def _checkpoint(path: Path) -> None:
    """Fold the WAL into the main file so that copying the one file copies everything."""
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
