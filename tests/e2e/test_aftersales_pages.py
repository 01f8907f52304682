"""Membership and returns in the browser: join (a declined card first), free shipping shown at
checkout, cancel at period end; return part of a delivered order and see it refunded; and the
admin's view of the sellers and what the shop owes them."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from devtools.browser import sign_in
from devtools.demo_shop import ADMIN_EMAIL, ADMIN_PASSWORD, token
from devtools.shop_db import ADDRESS
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


def test_admin_sees_each_seller_and_what_the_shop_owes_them(shop, new_page) -> None:
    """The sellers' admin view (the ops page): a store's products, parcels to ship, sales,
    commission kept and balance owed, after a shopper bought from it."""
    shop.require("/api/v1/admin/sellers")
    admin = {"Authorization": f"Bearer {shop.seeded.admin_token}"}
    with httpx.Client(base_url=shop.url, timeout=10) as client:
        email = f"store-{uuid.uuid4().hex[:8]}@example.com"
        r = client.post(
            "/api/v1/auth/register",
            json={"email": email, "password": shop.password, "full_name": "Store Owner"},
        )
        r.raise_for_status()
        seller = client.post(
            "/api/v1/admin/sellers",
            headers=admin,
            json={
                "user_id": r.json()["id"],
                "display_name": "Lantern Store",
                "commission_bps": 1000,
            },
        )
        seller.raise_for_status()
        own = {"Authorization": f"Bearer {token(shop.url, email, shop.password)}"}
        category = next(iter(shop.seeded.categories.values()))
        product = client.post(
            "/api/v1/seller/products",
            headers=own,
            json={
                "sku": f"LAN-{uuid.uuid4().hex[:6]}",
                "title": "Brass camping lantern",
                "category_id": category,
                "price_minor": 4000,
                "initial_stock": 5,
            },
        )
        product.raise_for_status()
        buyer = {
            "Authorization": f"Bearer {token(shop.url, shop.seeded.customers[1], shop.password)}"
        }
        pm = client.post(
            "/api/v1/payments/methods",
            json={
                "card_number": SUCCESS_CARD.replace(" ", ""),
                "exp_month": 12,
                "exp_year": 2099,
                "cvc": "123",
            },
        ).json()["payment_method"]
        order = client.post(
            "/api/v1/orders",
            headers={**buyer, "Idempotency-Key": uuid.uuid4().hex},
            json={
                "items": [{"product_id": product.json()["id"], "quantity": 1}],
                "shipping_address": ADDRESS,
                "payment_method": pm,
            },
        )
        assert order.status_code == 201, order.text

    page = new_page()
    sign_in(page, shop.url, ADMIN_EMAIL, ADMIN_PASSWORD, "/ops")
    expect(page.get_by_role("heading", name="Sellers")).to_be_visible()
    row = page.locator("#ops-sellers-section tr", has_text="Lantern Store")
    expect(row).to_contain_text("10.00 %")
    expect(row).to_contain_text("40.00")  # sales: the lantern
    expect(row).to_contain_text("36.00")  # owed: the sale less 10 % commission
