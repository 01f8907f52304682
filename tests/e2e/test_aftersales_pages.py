"""Membership and returns in the browser: join (a declined card first), free shipping shown at
checkout, cancel at period end; return part of a delivered order and see it refunded."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from devtools.browser import sign_in
from tests.e2e.test_shop import DECLINE_CARD, SUCCESS_CARD, add_to_cart, fill_checkout

pytestmark = pytest.mark.browser


def _fill_member_card(page, card: str) -> None:
    page.get_by_label("Card number").fill(card)
    page.get_by_label("Expiry month").fill("12")
    page.get_by_label("Expiry year").fill("2099")
    page.get_by_label("CVC").fill("123")


def test_join_membership_see_free_shipping_at_checkout_then_cancel(shop, new_page) -> None:
    shop.require("/api/v1/membership")
    page = new_page()
    sign_in(page, shop.url, shop.seeded.customers[2], shop.password, "/membership")
    expect(page.locator("#membership-status")).to_have_text("Not a member")
    _fill_member_card(page, DECLINE_CARD)
    page.get_by_role("button", name="Join").click()
    expect(page.locator("#membership-msg")).to_contain_text("Payment declined")
    _fill_member_card(page, SUCCESS_CARD)
    page.get_by_role("button", name="Join").click()
    expect(page.locator("#membership-status")).to_have_text("Active")
    expect(page.locator("#membership-shipping")).to_have_text("Yes")

    product = shop.product("HM-1")
    page.goto(f"{shop.url}/p/{product['id']}")
    add_to_cart(page)
    page.goto(f"{shop.url}/checkout")
    expect(page.locator("#member-shipping")).to_have_text("Member: standard shipping is free.")

    page.goto(f"{shop.url}/membership")
    page.get_by_role("button", name="Cancel at the end of this month").click()
    expect(page.locator("#membership-msg")).to_contain_text("Cancelled")
    expect(page.get_by_text("Ends on")).to_be_visible()
    expect(page.locator("#membership-shipping")).to_have_text("Yes")  # paid until then


def test_return_part_of_a_delivered_order_and_see_the_refund(shop, new_page) -> None:
    shop.require("/api/v1/returns", "/api/v1/orders")
    product = shop.product("KT-2")
    page = new_page()
    sign_in(page, shop.url, shop.seeded.customers[0], shop.password, f"/p/{product['id']}")
    add_to_cart(page, 3)
    page.goto(f"{shop.url}/checkout")
    fill_checkout(page, SUCCESS_CARD)
    page.get_by_role("button", name=re.compile(r"^Pay")).click()
    expect(page.get_by_role("heading", name="Thank you for your order!")).to_be_visible()
    order_id = urlsplit(page.url).path.rsplit("/", 1)[-1]
    admin = {"Authorization": f"Bearer {shop.seeded.admin_token}"}
    with httpx.Client(base_url=shop.url, headers=admin, timeout=10) as client:
        for step in ("ship", "deliver"):
            client.post(f"/api/v1/admin/orders/{order_id}/{step}").raise_for_status()
    before = shop.stock(product["id"])

    page.goto(f"{shop.url}/orders/{order_id}")
    page.locator("#return-items").click()
    expect(page.get_by_role("heading", name=re.compile("Return items"))).to_be_visible()
    page.locator(f"#return-qty-{product['id']}").select_option("2")
    page.get_by_label("Reason (optional)").fill("Two were enough")
    page.get_by_role("button", name="Request return").click()
    expect(page.get_by_text("Your return request is in.")).to_be_visible()
    row = page.locator("#returns-table tbody tr").first
    expect(row.locator(".return-status")).to_contain_text("Requested")
    return_id = row.get_attribute("data-return-id")

    with httpx.Client(base_url=shop.url, headers=admin, timeout=10) as client:
        client.post(f"/api/v1/admin/returns/{return_id}/authorize").raise_for_status()
        r = client.post(f"/api/v1/admin/returns/{return_id}/receive", json={"lines": []})
        r.raise_for_status()
        assert r.json()["status"] == "refunded"
    page.reload()
    row = page.locator("#returns-table tbody tr").first
    expect(row.locator(".return-status")).to_have_text("Refunded")
    expect(row).to_contain_text("59.98")  # 2 × 29.99 back
    assert shop.stock(product["id"]) == before + 2  # restocked
