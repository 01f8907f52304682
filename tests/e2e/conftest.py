"""Browser tests: a real uvicorn process, a seeded catalog, and Debian's Chromium via Playwright.

Chromium comes from the distribution (``apt-get install -y chromium``), never from a
Playwright download; without it every test here is skipped with that command as the reason.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.browser import CHROMIUM, launch_chromium
from devtools.demo_shop import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    CUSTOMER_PASSWORD,
    LiveServer,
    Seeded,
    live_server,
    seed_catalog,
    wait_for_search,
)
from devtools.shop_db import create_admin
from devtools.waits import scaled
from features.events import iter_segment_records
from tests.conftest import truncate_all

APT_HINT = "apt-get update && apt-get install -y chromium"


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; install Debian's Chromium as root: {APT_HINT}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a dev dependency
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        yield chromium
        chromium.close()


@dataclass
class Shop:
    server: LiveServer
    seeded: Seeded
    search_ready: bool = False
    password: str = CUSTOMER_PASSWORD

    @property
    def url(self) -> str:
        return self.server.url

    def product(self, sku: str) -> dict[str, Any]:
        return self.seeded.products[sku]

    def route_missing(self, path: str) -> bool:
        """True while a route has not landed: unknown paths answer 404 "Not Found"."""
        r = httpx.get(f"{self.url}{path}", timeout=10)
        if r.status_code != 404:
            return False
        try:
            return r.json().get("detail") == "Not Found"
        except ValueError:
            return True

    def require(self, *paths: str) -> None:
        missing = [p for p in paths if self.route_missing(p)]
        if missing:
            pytest.skip(f"route(s) not landed yet: {', '.join(missing)}")

    def stock(self, product_id: int) -> int:
        """Available units, read fresh from the stock books (product reads are cached ~1 s)."""
        r = httpx.get(
            f"{self.url}/api/v1/inventory/{product_id}/movements?limit=1",
            headers={"Authorization": f"Bearer {self.seeded.admin_token}"},
            timeout=10,
        )
        r.raise_for_status()
        return r.json()["stock"]["available"]

    def events(self) -> list[dict[str, Any]]:
        """Every event in the log so far: closed segments and the one still being written."""
        directory = Path(self.server.data_dir) / "events"
        records: list[dict[str, Any]] = []
        for path in sorted(directory.glob("*")):
            if path.suffix in (".jsonl", ".open"):
                records.extend(r for r in iter_segment_records(path) if r is not None)
        return records

    def wait_for_events(self, predicate, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + scaled(timeout)
        while True:
            found = [e for e in self.events() if predicate(e)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


@contextmanager
def _seeded_shop(data_dir: Path, db_url: str, jwt_secret: str) -> Iterator[Shop]:
    """A live server on ``db_url``, seeded through the admin API; stopped on exit."""
    with live_server(data_dir=data_dir, database_url=db_url, jwt_secret=jwt_secret) as server:
        try:
            create_admin(db_url, ADMIN_EMAIL, ADMIN_PASSWORD)
            seeded = seed_catalog(server.url, customers=3)
        except Exception as exc:
            raise RuntimeError(f"seeding failed: {exc}\n{server.log_tail()}") from exc
        yield Shop(server, seeded, search_ready=wait_for_search(server.url))


@pytest.fixture
def shop(settings, db_url: str) -> Iterator[Shop]:
    """A live server on the test database, seeded through the admin API."""
    with _seeded_shop(settings.data_dir, db_url, settings.jwt_secret) as shop:
        yield shop


@pytest.fixture(scope="module")
def shared_shop(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """One seeded live server for a whole module whose tests never change the shop's data
    (pages driven against sample answers, reads): a server start, seed and search-index wait
    per module instead of per test. Every test of such a module must use it and none may use
    ``settings`` (whose teardown empties the tables under the running server); the tables
    are emptied when the module is done."""
    data_dir = tmp_path_factory.mktemp("shared-shop") / "data"
    try:
        with _seeded_shop(data_dir, db_url, secrets.token_urlsafe(48)) as shop:
            yield shop
    finally:
        truncate_all(db_url)


@pytest.fixture
def new_page(browser):
    """Open pages in fresh browser contexts (separate storage: separate shoppers)."""
    contexts = []
    errors: list[str] = []

    def _open(viewport: dict[str, int] | None = None):
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
        # Actions and ``expect`` assertions wait alike, longer on a loaded machine (playwright's
        # assertions default to 5 s, which a busy CI machine overran once).
        context.set_default_timeout(scaled(15) * 1000)
        from playwright.sync_api import expect

        expect.set_options(timeout=scaled(15) * 1000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield _open
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors in the pages: {errors}"
