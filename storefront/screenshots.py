"""Screenshots of the storefront's main pages, and the live-server helpers the browser tests use.

    python -m storefront.screenshots                       # own server, temp data, seeded catalog
    python -m storefront.screenshots --base-url http://127.0.0.1:8000 \\
        --admin-email admin@example.com --admin-password ...   # an already running shop

Pages are shot with Debian's Chromium (``apt-get install -y chromium``) through Playwright; no
browser is downloaded. Images go to ``docs/screenshots/``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("STORELOOP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-1"
CUSTOMER_PASSWORD = "correct-horse-1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    """A real uvicorn process serving the app on 127.0.0.1."""

    base_url: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def live_server(
    *, data_dir: Path, database_url: str, jwt_secret: str | None = None, timeout: float = 90.0
) -> Iterator[LiveServer]:
    """Start ``uvicorn serving.asgi:app`` with its own environment; stop it on exit."""
    port = free_port()
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
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "uvicorn.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below, after the process
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "serving.asgi:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, process, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited early:\n{server.log_tail()}")
            try:
                if httpx.get(f"{server.base_url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start in {timeout}s:\n{server.log_tail()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def create_admin(database_url: str, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD):
    """The first admin is made directly in the database, as ``storeloop create-admin`` does."""
    from serving.core.config import Settings
    from serving.db.engine import Database
    from serving.services.accounts import create_admin as make

    db = Database(Settings(database_url=database_url).sqlalchemy_url)
    try:
        with db.session(write=True) as session:
            make(session, email=email, password=password)
    finally:
        db.dispose()


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


def seed_catalog(base_url: str, database_url: str, customers: int = 2) -> Seeded:
    """A small catalog and customers, made through the public admin API."""
    create_admin(database_url)
    admin = token(base_url, ADMIN_EMAIL, ADMIN_PASSWORD)
    headers = {"Authorization": f"Bearer {admin}"}
    seeded = Seeded(admin_token=admin)
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


def sample_search(products: list[dict[str, Any]], query: str, cursor: str | None) -> dict:
    """A search answer in the API's contract, built from real products (for pages and tests
    exercised before the search route is there)."""
    words = query.lower().split()
    hits = [p for p in products if any(w in p["title"].lower() for w in words)]
    if not hits:
        return {
            "hits": [],
            "total": 0,
            "facets": {},
            "did_you_mean": "headphones" if "head" in query.lower() else None,
            "next_cursor": None,
            "search_id": "s-zero",
            "ranker_version": "sample",
        }
    page = hits[3:] if cursor else hits[:3]

    def marked(title: str) -> str:
        for w in words:
            title = re.sub(f"({re.escape(w)})", r"<mark>\1</mark>", title, flags=re.IGNORECASE)
        return title

    brands: dict[str, int] = {}
    for p in hits:
        brands[p["brand"]] = brands.get(p["brand"], 0) + 1
    return {
        "hits": [
            {
                "product_id": p["id"],
                "title": p["title"],
                "brand": p["brand"],
                "price_minor": p["price_minor"],
                "currency": p["currency"],
                "available": p["stock"]["available"],
                "image_url": None,
                "highlights": {"title": marked(p["title"])},
            }
            for p in page
        ],
        "total": len(hits),
        "facets": {
            "category": [{"value": p["category"]["slug"], "count": 1} for p in hits[:1]],
            "brand": [{"value": b, "count": n} for b, n in sorted(brands.items())],
            "price": [{"value": "0-9999", "count": 2}, {"value": "10000-*", "count": 1}],
            "in_stock": [{"value": True, "count": len(hits)}],
        },
        "did_you_mean": None,
        "next_cursor": None if cursor or len(hits) <= 3 else "c2",
        "search_id": "s-2" if cursor else "s-1",
        "ranker_version": "sample",
    }


def sample_recs(products: list[dict[str, Any]], path: str) -> dict:
    surface = path.rstrip("/").rsplit("/", 1)[-1]
    return {
        "items": [{"product_id": p["id"], "score": 1.0 / (i + 1)} for i, p in enumerate(products)],
        "rec_id": f"r-{surface}",
        "model_version": "sample-1",
    }


SAMPLE_OPS = {
    "models": [
        {"name": "als", "version": "7", "metrics": {"ndcg@10": 0.182, "recall@10": 0.241}},
        {"name": "popularity", "version": "3", "metrics": {"ndcg@10": 0.094, "recall@10": 0.13}},
    ],
    "search_index": {"backend": "tantivy", "version": "idx-12", "documents": 10},
    "online_ctr": [{"surface": "home", "impressions": 1200, "clicks": 84, "ctr": 0.07}],
    "pipeline_runs": [
        {"job": "daily_models", "status": "SUCCESS", "ended_at": "2025-01-01T06:00:00Z"}
    ],
    "dagster_url": "http://127.0.0.1:3000",
}


def install_samples(context, base_url: str, only_missing: bool = True) -> list[str]:
    """Answer search, suggest, recommendation and ops calls in the browser with contract-shaped
    sample data (by default only for routes the server does not have yet). Returns the names."""
    products = httpx.get(f"{base_url}/api/v1/products?limit=100", timeout=10).json()["data"]
    installed = []

    def want(path: str) -> bool:
        return not only_missing or route_missing(base_url, path)

    def fulfil(route, body: dict) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    if want("/api/v1/search/suggest?q=x"):
        installed.append("suggest")

        def suggest(route) -> None:
            q = parse_qs(urlsplit(route.request.url).query).get("q", [""])[0].lower()
            matches = [p for p in products if q in p["title"].lower()][:4]
            items = [{"text": "headphones", "type": "query"}] if "head" in q else []
            items += [
                {"text": p["title"], "type": "product", "product_id": p["id"]} for p in matches
            ]
            fulfil(route, {"suggestions": items})

        context.route(f"{base_url}/api/v1/search/suggest?*", suggest)
    if want("/api/v1/search?q=x"):
        installed.append("search")

        def search(route) -> None:
            params = parse_qs(urlsplit(route.request.url).query)
            q = params.get("q", [""])[0]
            brands = params.get("brand", [])
            pool = [p for p in products if not brands or p["brand"] in brands]
            fulfil(route, sample_search(pool, q, params.get("cursor", [None])[0]))

        context.route(f"{base_url}/api/v1/search?*", search)
    if want("/api/v1/recommendations/popular"):
        installed.append("recommendations")
        context.route(
            f"{base_url}/api/v1/recommendations/**",
            lambda route: fulfil(
                route, sample_recs(products[:6], urlsplit(route.request.url).path)
            ),
        )
    if want("/api/v1/admin/ops"):
        installed.append("ops")
        context.route(f"{base_url}/api/v1/admin/ops", lambda route: fulfil(route, SAMPLE_OPS))
    return installed


def wait_for_search(base_url: str, query: str = "headphones", timeout: float = 45.0) -> bool:
    """Wait until the search route finds the seeded catalog; False if it never does."""
    if route_missing(base_url, f"/api/v1/search?q={query}"):
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{base_url}/api/v1/search", params={"q": query}, timeout=10)
        if r.status_code == 200 and r.json().get("total") and r.json().get("facets"):
            return True
        time.sleep(0.5)
    return False


def launch_chromium(playwright):
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )


def sign_in(page, base_url: str, email: str, password: str, next_path: str = "/account") -> None:
    page.goto(f"{base_url}/signin?next={next_path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    # By path: a glob "**/cart" already matches the sign-in page's own "/signin?next=/cart",
    # which let callers go on before the sign-in had landed (flaky on a busy machine).
    page.wait_for_url(lambda url: urlsplit(url).path == next_path)


def take_screenshots(
    base_url: str, out_dir: Path, admin: tuple[str, str], samples: bool = True
) -> list[Path]:
    """Shoot home, search, category, product, cart, checkout and ops; return the files.

    With ``samples``, routes the server does not have yet answer with contract-shaped sample
    data in the browser, so the pages show what they will look like (and say so on stdout).
    """
    from playwright.sync_api import sync_playwright

    out_dir.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    products = httpx.get(f"{base_url}/api/v1/products?limit=20").json()["data"]
    product = next((p for p in products if p["stock"]["available"] > 1), products[0])
    categories = httpx.get(f"{base_url}/api/v1/categories").json()["data"]
    category = product["category"]["slug"] if product else categories[0]["slug"]
    query = "headphones"

    def shot(page, name: str, full_page: bool = True) -> None:
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)
        path = out_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        shots.append(path)

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        if samples:
            filled = install_samples(context, base_url)
            if filled:
                print("sample data in the browser for missing routes:", ", ".join(filled))
        page = context.new_page()
        page.goto(f"{base_url}/")
        shot(page, "home")
        page.goto(f"{base_url}/search?q={query}")
        shot(page, "search")
        page.goto(f"{base_url}/c/{category}")
        shot(page, "category")
        page.goto(f"{base_url}/p/{product['id']}")
        shot(page, "product")
        page.get_by_role("button", name="Add to cart").click()
        page.wait_for_timeout(500)
        page.goto(f"{base_url}/cart")
        shot(page, "cart")
        sign_in(page, base_url, admin[0], admin[1], "/checkout")
        page.get_by_label("Full name").fill("Ada Lovelace")
        page.get_by_label("Street and number").fill("12 Analytical Row")
        page.get_by_label("Postal code").fill("10115")
        page.get_by_label("City").fill("Berlin")
        page.get_by_label("Card number").fill("4242 4242 4242 4242")
        shot(page, "checkout")
        page.goto(f"{base_url}/ops")
        shot(page, "ops")
        phone = browser.new_context(
            viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
        )
        if samples:
            install_samples(phone, base_url)
        mobile = phone.new_page()
        mobile.goto(f"{base_url}/p/{product['id']}")
        shot(mobile, "product-phone", full_page=False)
        mobile.goto(f"{base_url}/search?q={query}")
        shot(mobile, "search-phone", full_page=False)
        browser.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="a running shop; default: start one on temp data")
    parser.add_argument("--admin-email", default=ADMIN_EMAIL)
    parser.add_argument("--admin-password", default=ADMIN_PASSWORD)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--no-samples", action="store_true", help="show missing routes as missing")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2
    if args.base_url:
        admin = (args.admin_email, args.admin_password)
        shots = take_screenshots(args.base_url, args.out, admin, not args.no_samples)
    else:
        from serving.core.config import Settings
        from serving.db import migrate

        with tempfile.TemporaryDirectory(prefix="storeloop-shots-") as tmp:
            data_dir = Path(tmp) / "data"
            database_url = f"sqlite:///{data_dir / 'storeloop.db'}"
            data_dir.mkdir(parents=True)
            migrate.upgrade(Settings(database_url=database_url).sqlalchemy_url)
            with live_server(data_dir=data_dir, database_url=database_url) as server:
                seed_catalog(server.base_url, database_url)
                wait_for_search(server.base_url)
                admin = (ADMIN_EMAIL, ADMIN_PASSWORD)
                shots = take_screenshots(server.base_url, args.out, admin, not args.no_samples)
    for path in shots:
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
