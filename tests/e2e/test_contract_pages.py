"""Pages that depend on search, recommendations and the ops report, driven against answers in
the API's documented shape. The answers are given inside the browser (Playwright routing), so
these tests hold the pages to the contract whether or not those routes have landed; the real
routes are covered by test_shop.py once they exist."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from devtools.browser import install_samples, sign_in
from devtools.demo_shop import ADMIN_EMAIL, ADMIN_PASSWORD

# Nothing here changes the shop's data or depends on the database behind it (the answers
# are samples): one shared server per module, and SQLite is enough (left out of -m db).
pytestmark = [pytest.mark.browser, pytest.mark.db_agnostic]


@pytest.fixture(scope="module")
def shop(shared_shop):
    return shared_shop


@pytest.fixture
def page(shop, new_page):
    page = new_page()
    install_samples(page.context, shop.url, only_missing=False)
    return page


def session_events(shop, page, kind: str, **fields):
    page.evaluate("window.storeloopEvents.flush()")
    sid = page.evaluate("localStorage.getItem('sl.sid')")
    return shop.wait_for_events(
        lambda e: (
            e["type"] == kind
            and e["session_id"] == sid
            and all(e.get(k) == v for k, v in fields.items())
        )
    )


def test_type_ahead_suggestions_work_with_the_keyboard(shop, page) -> None:
    page.goto(f"{shop.url}/")
    box = page.get_by_role("combobox", name="Search products")
    box.press_sequentially("head", delay=30)
    listbox = page.get_by_role("listbox", name="Suggestions")
    expect(listbox).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    options = listbox.get_by_role("option")
    expect(options.first).to_have_text("headphones")
    box.press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", "suggestion-0")
    box.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=headphones$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("headphones")
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    # A product suggestion goes straight to the product.
    box.fill("")
    box.press_sequentially("studio", delay=30)
    expect(listbox.get_by_role("option").first).to_contain_text("Sonic Studio Headphones")
    listbox.get_by_role("option").first.click()
    page.wait_for_url(re.compile(r"/p/\d+$"))
    expect(page.locator("article.product h1")).to_be_focused()
    box.press_sequentially("blan", delay=30)
    expect(listbox).to_be_visible()
    box.press("Escape")
    expect(listbox).to_be_hidden()


def test_results_highlights_facets_sort_pages_and_click_events(shop, page) -> None:
    page.goto(f"{shop.url}/search?q=headphones")
    cards = page.locator(".results .card")
    expect(cards).to_have_count(3)
    expect(page.locator("#result-count")).to_have_text("4 results")
    expect(cards.first.locator("mark")).to_have_text("Headphones")
    expect(page.locator("#facet-brand")).to_contain_text("Sonic (2)")
    expect(page.locator("#facet-category")).to_contain_text("Headphones (1)")
    # Pagination by cursor, and back.
    page.get_by_role("link", name="Next →").click()
    page.wait_for_url(re.compile(r"cursor=c2&page=2"))
    expect(cards).to_have_count(1)
    page.get_by_role("link", name="← Previous").click()
    page.wait_for_url(re.compile(r"/search\?q=headphones$"))
    expect(cards).to_have_count(3)
    # Sort and a facet change the query.
    page.get_by_label("Sort by").select_option("price_desc")
    page.wait_for_url(re.compile(r"sort=price_desc"))
    page.locator("#facet-brand label", has_text="Sonic").click()
    page.wait_for_url(re.compile(r"brand=Sonic"))
    expect(cards).to_have_count(2)
    expect(page.get_by_role("link", name="Remove filter Brand: Sonic")).to_be_visible()
    expect(page.locator("#facet-brand input").last).to_be_checked()
    # Second result clicked: the click carries its position and the search's id.
    cards.nth(1).locator(".card-link").click()
    page.wait_for_url(re.compile(r"/p/\d+$"))
    product_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("article.product h1")).to_be_visible()
    clicks = session_events(shop, page, "search_click", search_id="s-1")
    assert clicks and clicks[-1]["position"] == 1 and clicks[-1]["product_id"] == product_id
    searches = session_events(shop, page, "search", search_id="s-2")
    assert searches and searches[0]["query"] == "headphones"
    views = session_events(shop, page, "product_view", product_id=product_id)
    assert views and views[-1]["search_id"] == "s-1"


def test_zero_results_page_helps(shop, page) -> None:
    page.goto(f"{shop.url}/search?q=headphnes")
    expect(page.get_by_role("heading", level=1)).to_contain_text("No results for")
    expect(page.locator(".did-you-mean")).to_contain_text("Did you mean headphones?")
    expect(page.get_by_text("Check the spelling")).to_be_visible()
    expect(page.locator("#zero-popular .card").first).to_be_visible()
    page.locator(".did-you-mean a").click()
    page.wait_for_url(re.compile(r"q=headphones$"))
    expect(page.locator(".results .card").first).to_be_visible()


def test_highlights_cannot_inject_markup(shop, page) -> None:
    hostile = {
        "hits": [
            {
                "product_id": shop.product("HP-1")["id"],
                "title": "x",
                "brand": "b",
                "price_minor": 100,
                "currency": "EUR",
                "available": 3,
                "image_url": "https://tracker.example/pixel.png",
                "highlights": {"title": '<mark>Sonic</mark> <img src=x onerror="window.pwned=1">'},
            }
        ],
        "total": 1,
        "facets": {},
        "did_you_mean": None,
        "next_cursor": None,
        "search_id": "s-hostile",
        "ranker_version": "t",
    }
    import json

    page.route(
        f"{shop.url}/api/v1/search?*",
        lambda route: route.fulfill(content_type="application/json", body=json.dumps(hostile)),
    )
    page.goto(f"{shop.url}/search?q=sonic")
    title = page.locator(".results .card-title")
    expect(title.locator("mark")).to_have_text("Sonic")
    expect(title).not_to_contain_text("onerror")
    assert title.locator("img").count() == 0
    assert page.evaluate("window.pwned") is None
    # Images from other hosts are never loaded: the tile uses a local placeholder.
    src = page.locator(".results .card-img").get_attribute("src")
    assert src.startswith("data:image/svg+xml")


def test_recommendation_impressions_and_clicks_carry_rec_id(shop, page) -> None:
    page.goto(f"{shop.url}/")
    strip = page.locator("#for-you")
    expect(strip.locator(".card")).to_have_count(6)
    rec_id = strip.get_attribute("data-rec-id")
    assert rec_id and rec_id.startswith("r-")
    expect(page.locator("#trending .card").first).to_be_visible()
    strip.locator(".card-link").nth(2).click()
    page.wait_for_url(re.compile(r"/p/\d+$"))
    product_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#similar .card").first).to_be_visible()
    expect(page.locator("#bought-together .card").first).to_be_visible()
    impressions = session_events(shop, page, "rec_impression", rec_id=rec_id)
    assert sorted(e["position"] for e in impressions) == list(range(6))
    clicks = session_events(shop, page, "rec_click", rec_id=rec_id)
    assert clicks and clicks[0]["product_id"] == product_id and clicks[0]["position"] == 2
    views = session_events(shop, page, "product_view", product_id=product_id)
    assert views and views[-1]["rec_id"] == rec_id
    assert session_events(shop, page, "rec_impression", rec_id="r-similar")


def test_ops_page_for_admins_only(shop, page) -> None:
    page.goto(f"{shop.url}/ops")
    expect(page.get_by_text("This page is for shop operators.")).to_be_visible()
    sign_in(page, shop.url, ADMIN_EMAIL, ADMIN_PASSWORD, "/ops")
    expect(page.get_by_role("link", name="Ops")).to_be_visible()
    expect(page.get_by_role("heading", name="Serving models")).to_be_visible()
    expect(page.locator("table").first).to_contain_text("als")
    expect(page.get_by_role("link", name="Open the Dagster UI")).to_have_attribute(
        "href", "http://127.0.0.1:3000"
    )


def test_ops_page_says_when_the_report_is_missing(shop, new_page) -> None:
    if not shop.route_missing("/api/v1/admin/ops"):
        pytest.skip("the ops report route exists")
    page = new_page()
    sign_in(page, shop.url, ADMIN_EMAIL, ADMIN_PASSWORD, "/ops")
    expect(page.get_by_text("The operations report is not available yet.")).to_be_visible()


def test_phone_sized_screen_keeps_everything_reachable(shop, new_page) -> None:
    page = new_page({"width": 375, "height": 740})
    install_samples(page.context, shop.url, only_missing=False)
    page.goto(f"{shop.url}/search?q=headphones")
    expect(page.locator(".results .card").first).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways on a phone ({width}px)"
    expect(page.get_by_role("link", name=re.compile(r"^Cart"))).to_be_in_viewport()
    page.goto(f"{shop.url}/p/{shop.product('HP-1')['id']}")
    expect(page.get_by_role("button", name="Add to cart")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_keyboard_only_shopper_can_reach_search_and_skip_link(shop, page) -> None:
    page.goto(f"{shop.url}/")
    expect(page.locator("#for-you .card").first).to_be_visible()
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("combobox", name="Search products")).to_be_focused()
    page.keyboard.type("blanket")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=blanket"))
    expect(page.locator(".results .card")).to_have_count(1)
    # After a navigation, focus moves to the new page's heading.
    expect(page.get_by_role("heading", level=1)).to_be_focused()
