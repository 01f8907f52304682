"""A shopper's whole trip through the storefront in Chromium, and what it leaves in the log."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import Page, expect

from devtools.browser import sign_in

pytestmark = pytest.mark.browser

SUCCESS_CARD = "4242 4242 4242 4242"
DECLINE_CARD = "4000 0000 0000 0002"


def fill_checkout(page: Page, card: str) -> None:
    page.get_by_label("Full name").fill("Ada Shopper")
    page.get_by_label("Street and number").fill("1 Loop Street")
    page.get_by_label("Postal code").fill("10115")
    page.get_by_label("City").fill("Berlin")
    page.get_by_label("Card number").fill(card)
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill(str(dt.date.today().year + 2))
    page.get_by_label("CVC").fill("123")


def add_to_cart(page: Page, quantity: int = 1) -> None:
    if quantity != 1:
        page.get_by_label("Quantity").fill(str(quantity))
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator(".buy-status")).to_contain_text("Added")


def test_misspelled_search_to_order_history_and_events(shop, new_page) -> None:
    page = new_page()
    page.goto(f"{shop.url}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    expect(page.locator("#for-you .card").first).to_be_visible()
    rec_id = page.locator("#for-you").get_attribute("data-rec-id") or None

    # With search (and its index holding the catalog) the trip starts with a misspelled query;
    # before that it goes through the category page.
    search_live = shop.search_ready
    box = page.get_by_role("combobox", name="Search products")
    box.fill("headphnes")
    box.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=headphnes"))
    search_ids: list[str] = []
    if search_live:
        results = page.locator(".results .card")
        dym = page.locator(".did-you-mean a")
        expect(results.first.or_(dym.first)).to_be_visible()
        if dym.count():
            dym.first.click()
            page.wait_for_url(re.compile(r"q=headphones"))
        expect(results.first).to_be_visible()
        expect(page.locator(".view")).to_have_attribute("data-search-id", re.compile(r".+"))
        search_ids.append(page.locator(".view").get_attribute("data-search-id"))
        page.locator("#facet-brand label", has_text="Sonic").click()
    else:
        expect(page.locator(".notice, .empty-help").first).to_be_visible()
        page.get_by_role("link", name="Electronics").click()
        page.wait_for_url(re.compile(r"/c/electronics$"))
        page.goto(f"{shop.url}/c/headphones")
        page.locator("#facet-brand label", has_text="Sonic").click()
    page.wait_for_url(re.compile(r"brand=Sonic"))
    first = page.locator(".results .card-link").first
    expect(first).to_contain_text("Sonic")
    if search_live:
        # The filtered page is a new search: wait until its results carry their own id.
        view = page.locator(".view")
        expect(view).to_have_attribute("data-search-id", re.compile(r".+"))
        expect(view).not_to_have_attribute("data-search-id", search_ids[0] or "")
        search_ids.append(view.get_attribute("data-search-id"))
    first.click()
    page.wait_for_url(re.compile(r"/p/\d+$"))
    product_id = int(page.url.rsplit("/", 1)[1])
    title = page.locator("article.product h1").inner_text()
    assert "Sonic" in title

    shop.require("/api/v1/cart")
    add_to_cart(page)
    expect(page.locator("#cart-count")).to_have_text("1")

    # Signing in keeps the anonymous cart.
    sign_in(page, shop.url, shop.seeded.customers[0], shop.password, "/cart")
    expect(page.locator(".cart-table")).to_contain_text(title)
    expect(page.locator("#nav-account")).to_have_text("Account")

    shop.require("/api/v1/payments/methods", "/api/v1/orders")
    page.get_by_role("link", name="Go to checkout").click()
    page.wait_for_url(re.compile(r"/checkout$"))
    fill_checkout(page, SUCCESS_CARD)
    page.get_by_role("button", name=re.compile(r"^Pay")).click()
    expect(page.get_by_role("heading", name="Thank you for your order!")).to_be_visible()
    order_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#cart-count")).to_have_text("0")

    page.get_by_role("link", name="Orders", exact=True).click()
    row = page.locator(f'tr[data-order-id="{order_id}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text(title)
    row.get_by_role("link").click()
    expect(page.locator(".tracking")).to_be_visible()

    # The session's browser events reached the log, with the ids the pages were given.
    page.evaluate("window.storeloopEvents.flush()")
    sid = page.evaluate("localStorage.getItem('sl.sid')")

    def mine(kind: str, **fields):
        def match(e: dict) -> bool:
            return (
                e["type"] == kind
                and e["session_id"] == sid
                and all(e.get(k) == v for k, v in fields.items())
            )

        return match

    views = shop.wait_for_events(mine("product_view", product_id=str(product_id)))
    assert views, "product_view did not arrive"
    assert shop.wait_for_events(mine("add_to_cart", product_id=str(product_id)))
    assert shop.wait_for_events(mine("checkout_start"))
    assert shop.wait_for_events(mine("page_view"))
    for event in views + shop.wait_for_events(mine("add_to_cart")):
        assert event["source"] == "client" and event["server_ts"]
    if rec_id:
        impressions = shop.wait_for_events(mine("rec_impression", rec_id=rec_id))
        assert [e["position"] for e in impressions][:3] == [0, 1, 2]
    if search_live:
        for search_id in search_ids:
            assert shop.wait_for_events(mine("search", search_id=search_id)), search_id
        clicks = shop.wait_for_events(mine("search_click", search_id=search_ids[-1]))
        assert clicks and clicks[0]["product_id"] == str(product_id)
        assert clicks[0]["position"] == 0
        assert views[0]["search_id"] == search_ids[-1]
    else:
        assert shop.wait_for_events(mine("category_view"))


def test_declined_card_shows_a_clear_message_and_gives_stock_back(shop, new_page) -> None:
    shop.require("/api/v1/cart", "/api/v1/payments/methods", "/api/v1/orders")
    product = shop.product("HP-2")
    before = shop.stock(product["id"])
    page = new_page()
    sign_in(page, shop.url, shop.seeded.customers[1], shop.password, f"/p/{product['id']}")
    add_to_cart(page, 2)
    page.goto(f"{shop.url}/checkout")
    fill_checkout(page, DECLINE_CARD)
    page.get_by_role("button", name=re.compile(r"^Pay")).click()
    message = page.locator("#checkout-msg")
    expect(message).to_contain_text("Payment declined")
    expect(message).to_contain_text("declined")
    expect(message).to_be_focused()
    assert shop.stock(product["id"]) == before

    # The same form works with a good card afterwards (a fresh Idempotency-Key).
    page.get_by_label("Card number").fill(SUCCESS_CARD)
    page.get_by_role("button", name=re.compile(r"^Pay")).click()
    expect(page.get_by_role("heading", name="Thank you for your order!")).to_be_visible()
    assert shop.stock(product["id"]) == before - 2


def test_two_browsers_race_for_the_last_unit(shop, new_page) -> None:
    shop.require("/api/v1/cart", "/api/v1/payments/methods", "/api/v1/orders")
    product = shop.product("HP-5")
    assert shop.stock(product["id"]) == 1
    pages = []
    for email in shop.seeded.customers[:2]:
        page = new_page()
        sign_in(page, shop.url, email, shop.password, f"/p/{product['id']}")
        add_to_cart(page)
        page.goto(f"{shop.url}/checkout")
        fill_checkout(page, SUCCESS_CARD)
        pages.append(page)
    # Both press "Pay" at once.
    for page in pages:
        page.evaluate("document.getElementById('place-order').click()")
    outcomes = []
    for page in pages:
        won = page.get_by_role("heading", name="Thank you for your order!")
        lost = page.locator("#checkout-msg", has_text="sold out")
        expect(won.or_(lost)).to_be_visible()
        outcomes.append("won" if won.is_visible() else "sold out")
    assert sorted(outcomes) == ["sold out", "won"]
    assert shop.stock(product["id"]) == 0
    loser = pages[outcomes.index("sold out")]
    expect(loser.locator("#checkout-msg")).to_contain_text(product["title"])
    # Product reads may be served from a cache for about a second; a shopper reloading sees it.
    for _ in range(10):
        loser.goto(f"{shop.url}/p/{product['id']}")
        expect(loser.locator("#stock")).to_be_visible()
        if loser.locator("#stock").inner_text() == "Sold out":
            break
        loser.wait_for_timeout(300)
    expect(loser.locator("#stock")).to_have_text("Sold out")
    expect(loser.get_by_role("button", name="Sold out")).to_be_disabled()
