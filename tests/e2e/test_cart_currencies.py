"""A cart never shows one total across currencies, in Chromium (issue 18).

The cart API answers a mixed cart (an admin re-priced a product in another currency after it
was added) with ``subtotal_minor: null`` and one entry per currency in ``subtotals``, and the
checkout refuses an order mixing currencies (``services/checkout/pricing.py``: "All items of
one order must share a currency"). The pages showed a single subtotal anyway (an empty one,
or one currency's figure for the whole cart) and offered a "Pay …" button the checkout would
refuse. They now show one subtotal per currency, say why the cart cannot be checked out, and
explain a refused add-to-cart in words about currency instead of stock.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from devtools.browser import sign_in

from .test_shop import add_to_cart

pytestmark = pytest.mark.browser


def _reprice(shop, product_id: int, currency: str) -> None:
    r = httpx.patch(
        f"{shop.url}/api/v1/products/{product_id}",
        json={"currency": currency},
        headers={"Authorization": f"Bearer {shop.seeded.admin_token}"},
        timeout=10,
    )
    r.raise_for_status()


def test_a_mixed_currency_cart_shows_a_subtotal_per_currency_and_no_checkout(
    shop, new_page
) -> None:
    shop.require("/api/v1/cart")
    eur, usd, later = shop.product("HP-1"), shop.product("SP-1"), shop.product("KT-2")
    page = new_page()
    sign_in(page, shop.url, shop.seeded.customers[0], shop.password, f"/p/{eur['id']}")
    add_to_cart(page)
    page.goto(f"{shop.url}/p/{usd['id']}")
    add_to_cart(page)
    _reprice(shop, usd["id"], "USD")

    page.goto(f"{shop.url}/cart")
    table = page.locator(".cart-table")
    expect(table).to_contain_text(usd["title"])
    subtotals = page.locator(".cart-summary .subtotal")
    expect(subtotals).to_have_count(2)
    for product, currency in ((eur, "EUR"), (usd, "USD")):
        # One line per currency, so its subtotal reads exactly as that line's total.
        line_total = table.locator(f'tr[data-product-id="{product["id"]}"] td.num').inner_text()
        subtotal = page.locator(f'.cart-summary .subtotal[data-currency="{currency}"]')
        expect(subtotal).to_contain_text(f"Subtotal in {currency}")
        expect(subtotal.locator("strong")).to_have_text(line_total)
    warning = page.locator("#mixed-currencies")
    expect(warning).to_contain_text("EUR and USD")
    expect(warning).to_contain_text("one currency")
    expect(page.locator("#to-checkout")).to_have_attribute("aria-disabled", "true")

    page.goto(f"{shop.url}/checkout")
    expect(page.get_by_role("alert")).to_contain_text("cannot be checked out as one order")
    expect(page.locator("#place-order")).to_have_count(0)

    # Down to one currency, the cart has one subtotal again and goes to checkout.
    page.goto(f"{shop.url}/cart")
    page.get_by_role("button", name=f"Remove {usd['title']}").click()
    expect(page.locator(".cart-summary .subtotal")).to_have_count(1)
    expect(page.locator("#mixed-currencies")).to_have_count(0)
    expect(page.locator("#to-checkout")).not_to_have_attribute("aria-disabled", "true")

    # A product in another currency is refused with a reason about currency, not stock.
    _reprice(shop, later["id"], "USD")
    page.goto(f"{shop.url}/p/{later['id']}")
    page.get_by_role("button", name="Add to cart").click()
    status = page.locator(".buy-status")
    expect(status).to_contain_text("priced in USD")
    expect(status).not_to_contain_text("stock")
