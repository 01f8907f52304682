"""The demo shop the browser tests and the screenshots use: a live server and an HTTP seed.

Everything here talks to the shop over HTTP (the server is started by ``devtools.server``'s
launcher); the admin account the seed signs in with is made by the caller.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devtools.server import ServerProcess
from devtools.waits import scaled

__all__ = [
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "CUSTOMER_PASSWORD",
    "LiveServer",
    "Seeded",
    "live_server",
    "route_missing",
    "seed_catalog",
    "token",
    "wait_for_search",
]

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-1"
CUSTOMER_PASSWORD = "correct-horse-1"


class LiveServer(ServerProcess):
    """The shop under uvicorn on its own data directory, its log in ``uvicorn.log`` there."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        super().__init__(env=env, log_path=data_dir / "uvicorn.log")
        self.data_dir = data_dir


@contextmanager
def live_server(
    *,
    data_dir: Path,
    database_url: str,
    jwt_secret: str | None = None,
    timeout: float = 90.0,
    env: dict[str, str] | None = None,
) -> Iterator[LiveServer]:
    """Start ``uvicorn serving.asgi:app`` with its own environment (plus ``env``); stop it on
    exit."""
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "JWT_SECRET": jwt_secret or secrets.token_urlsafe(48),
        "STORELOOP_RATE_LIMIT_ENABLED": "false",
        "STORELOOP_ENVIRONMENT": "test",
        # New products reach the search index quickly (the default sync runs every 10 s)
        # and search results soon after (cached results otherwise live for 30 s).
        "STORELOOP_CATALOG_SYNC_SECONDS": "1",
        "STORELOOP_SEARCH_CACHE_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    server = LiveServer(data_dir, env)
    with server.start(timeout=timeout):
        yield server


def token(base_url: str, email: str, password: str) -> str:
    r = httpx.post(f"{base_url}/api/v1/auth/token", data={"username": email, "password": password})
    r.raise_for_status()
    return r.json()["access_token"]


@dataclass
class Seeded:
    admin_token: str
    categories: dict[str, int] = field(default_factory=dict)
    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: list[str] = field(default_factory=list)


CATEGORIES = [
    ("electronics", "Electronics", None),
    ("audio", "Audio", "electronics"),
    ("headphones", "Headphones", "audio"),
    ("speakers", "Speakers", "audio"),
    ("home", "Home", None),
    ("kitchen", "Kitchen", "home"),
]
PRODUCTS = [
    # sku, title, brand, category, price, attributes, stock
    ("HP-1", "Sonic Wireless Headphones", "Sonic", "headphones", 5999, {"color": "black"}, 10),
    ("HP-2", "Sonic Studio Headphones", "Sonic", "headphones", 12999, {"color": "white"}, 4),
    ("HP-3", "Aural Earbuds Pro", "Aural", "headphones", 8999, {"color": "black"}, 3),
    ("HP-4", "Aural Over-Ear Headphones", "Aural", "headphones", 7499, {"color": "blue"}, 6),
    ("HP-5", "Last Unit Headphones", "Rare", "headphones", 19999, {"color": "gold"}, 1),
    ("SP-1", "Boom Bluetooth Speaker", "Boom", "speakers", 4999, {"waterproof": True}, 7),
    ("SP-2", "Boom Party Speaker", "Boom", "speakers", 15999, {"waterproof": False}, 2),
    ("HM-1", "Cozy Wool Blanket", "Cozy", "home", 3999, {"material": "wool"}, 20),
    ("KT-1", "Barista Espresso Machine", "Crema", "kitchen", 24999, {"color": "steel"}, 5),
    ("KT-2", "Crema Milk Frother", "Crema", "kitchen", 2999, {"color": "black"}, 12),
]


def seed_catalog(
    base_url: str, admin: tuple[str, str] = (ADMIN_EMAIL, ADMIN_PASSWORD), customers: int = 2
) -> Seeded:
    """A small catalog and customers, made through the public admin API as ``admin`` (an
    existing admin account: ``storeloop create-admin``, or ``devtools.shop_db.create_admin``)."""
    admin_token = token(base_url, *admin)
    headers = {"Authorization": f"Bearer {admin_token}"}
    seeded = Seeded(admin_token=admin_token)
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        for slug, name, parent in CATEGORIES:
            body = {"slug": slug, "name": name, "parent_id": seeded.categories.get(parent or "")}
            r = client.post("/api/v1/categories", json=body)
            r.raise_for_status()
            seeded.categories[slug] = r.json()["id"]
        for sku, title, brand, cat, price, attrs, stock in PRODUCTS:
            r = client.post(
                "/api/v1/products",
                json={
                    "sku": sku,
                    "title": title,
                    "brand": brand,
                    "category_id": seeded.categories[cat],
                    "price_minor": price,
                    "attributes": attrs,
                    "initial_stock": stock,
                    "description": f"{title} by {brand}. A placeholder product for the demo shop.",
                    # Drawn by the shop itself, like the demo catalog's pictures.
                    "image_urls": [f"/static/placeholder/{sku}.svg"],
                },
            )
            r.raise_for_status()
            seeded.products[sku] = r.json()
        for n in range(1, customers + 1):
            email = f"shopper{n}@example.com"
            r = client.post(
                "/api/v1/auth/register",
                json={"email": email, "password": CUSTOMER_PASSWORD, "full_name": f"Shopper {n}"},
                headers={"Authorization": ""},
            )
            r.raise_for_status()
            seeded.customers.append(email)
    return seeded


def route_missing(base_url: str, path: str) -> bool:
    """True while a route has not landed: unknown paths answer 404 with detail "Not Found"."""
    r = httpx.get(f"{base_url}{path}", timeout=10)
    if r.status_code != 404:
        return False
    try:
        return r.json().get("detail") == "Not Found"
    except ValueError:
        return True


def wait_for_search(base_url: str, query: str = "headphones", timeout: float = 45.0) -> bool:
    """Wait until the search route finds the seeded catalog; False if it never does."""
    if route_missing(base_url, f"/api/v1/search?q={query}"):
        return False
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        r = httpx.get(f"{base_url}/api/v1/search", params={"q": query}, timeout=10)
        if r.status_code == 200 and r.json().get("total") and r.json().get("facets"):
            return True
        time.sleep(0.1)  # the catalog sync runs every second: do not wait out half of one
    return False
