"""Screenshots of the storefront's main pages (a tool: it talks to the shop over HTTP only).

    .venv/bin/python scripts/screenshots.py                # own server, temp data, seeded catalog
    .venv/bin/python scripts/screenshots.py --base-url http://127.0.0.1:8000 \\
        --admin-email admin@example.com --admin-password ...   # an already running shop

With no ``--base-url`` it prepares a temporary shop through the ``storeloop`` command line
(``migrate``, ``create-admin``), starts it with devtools' launcher and seeds it through the
admin API. Pages are shot with Debian's Chromium (``apt-get install -y chromium``) through
Playwright; no browser is downloaded. Images go to ``docs/screenshots/``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from devtools.browser import CHROMIUM, install_samples, launch_chromium, sign_in  # noqa: E402
from devtools.demo_shop import (  # noqa: E402
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    live_server,
    seed_catalog,
    wait_for_search,
)


def _storeloop(env: dict[str, str], *args: str) -> None:
    """Run a ``storeloop`` command (``python -m serving``) on the shop ``env`` describes."""
    subprocess.run([sys.executable, "-m", "serving", *args], cwd=REPO, env=env, check=True)


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
        with tempfile.TemporaryDirectory(prefix="storeloop-shots-") as tmp:
            data_dir = Path(tmp) / "data"
            data_dir.mkdir(parents=True)
            database_url = f"sqlite:///{data_dir / 'storeloop.db'}"
            env = {**os.environ, "DATA_DIR": str(data_dir), "DATABASE_URL": database_url}
            admin = (ADMIN_EMAIL, secrets.token_urlsafe(16))
            _storeloop(env, "migrate")
            _storeloop(env, "create-admin", "--email", admin[0], "--password", admin[1])
            with live_server(data_dir=data_dir, database_url=database_url) as server:
                seed_catalog(server.url, admin)
                wait_for_search(server.url)
                shots = take_screenshots(server.url, args.out, admin, not args.no_samples)
    for path in shots:
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
