"""Debian's Chromium through Playwright, and contract-shaped sample answers for missing routes.

Shared by the browser tests (``tests/e2e``) and the screenshots (``scripts/screenshots.py``).
No browser is downloaded: ``apt-get install -y chromium``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from devtools.demo_shop import route_missing

__all__ = ["CHROMIUM", "install_samples", "launch_chromium", "sign_in"]

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
