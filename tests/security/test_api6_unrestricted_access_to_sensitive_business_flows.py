"""API6:2023 Unrestricted Access to Sensitive Business Flows: hoarding and review spam.

Scarce stock cannot be hoarded in carts: a cart reserves nothing (``services/shop/cart.py``), and
the only reservation, an order's, is bounded by ``reservation_ttl_seconds`` and the saga
timeout and compensated by recovery
(``tests/checkout/test_checkout_api.py::test_regression_half_made_order_after_crash_recovered_on_restart``).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from serving.db.tables.orders import Order
from serving.services.shop import inventory
from tests.checkout.conftest import order_body, place, tokenise


def _available(client, pid: int) -> int:
    """From the database: product pages are cached for up to a second."""
    with client.app.state.components.db.session() as s:
        return inventory.stock_of(s, pid)["available"]


def test_api6_carts_do_not_hold_scarce_stock(client, make_customer, make_product):
    pid = make_product(1)
    hoarders = [make_customer() for _ in range(3)]
    for h in hoarders:
        assert (
            h.post("/api/v1/cart/items", json={"product_id": pid, "quantity": 1}).status_code == 200
        )
    assert _available(client, pid) == 1
    buyer = make_customer()
    r = place(buyer, order_body(tokenise(client), [(pid, 1)]))
    assert r.status_code == 201, r.text
    assert _available(client, pid) == 0
    # The hoarders' lines now show as unavailable and their checkouts are refused.
    assert hoarders[0].get("/api/v1/cart").json()["items"][0]["available"] is False
    assert place(hoarders[0], order_body(tokenise(client))).status_code == 409


def test_api6_cart_quantities_are_capped_by_stock(client, customer, make_product):
    pid = make_product(2)
    r = customer.post("/api/v1/cart/items", json={"product_id": pid, "quantity": 3})
    assert r.status_code == 409
    r = customer.post("/api/v1/cart/items", json={"product_id": pid, "quantity": 100_000})
    assert r.status_code == 422


def test_api6_order_reservations_are_bounded_in_time(app, client, customer, make_product):
    settings = app.state.components.settings
    pid = make_product(3)
    r = place(customer, order_body(tokenise(client), [(pid, 1)]))
    assert r.status_code == 201
    with app.state.components.db.session() as s:
        order = s.execute(select(Order).where(Order.id == r.json()["id"])).scalar_one()
    ttl = min(settings.reservation_ttl_seconds, settings.checkout_saga_timeout_seconds)
    assert order.reserved_until is not None
    assert order.reserved_until - order.created_at <= timedelta(seconds=ttl)


def test_api6_one_review_per_product_per_user(client, customer, make_product):
    pid = make_product(1)
    url = f"/api/v1/products/{pid}/reviews"
    assert customer.post(url, json={"rating": 5}).status_code == 201
    for _ in range(3):
        assert customer.post(url, json={"rating": 1}).status_code == 409
    summary = client.get(url).json()
    assert summary["rating_count"] == 1 and summary["rating_avg"] == 5


def test_api6_review_rate_per_user_is_limited(app, client, make_customer, make_product):
    """Review spam: one account cannot review the whole catalogue at once (per-account bucket)."""
    burst = app.state.components.settings.review_burst
    pids = [make_product(1) for _ in range(burst + 2)]
    spammer, other = make_customer(), make_customer()
    statuses = [
        spammer.post(f"/api/v1/products/{pid}/reviews", json={"rating": 1}).status_code
        for pid in pids
    ]
    assert statuses == [201] * burst + [429, 429]
    refused = spammer.post(f"/api/v1/products/{pids[-1]}/reviews", json={"rating": 1})
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["type"].endswith("/review-rate-limited")
    # Refused reviews were not written, and another account is not affected.
    assert client.get(f"/api/v1/products/{pids[-1]}/reviews").json()["rating_count"] == 0
    assert other.post(f"/api/v1/products/{pids[-1]}/reviews", json={"rating": 4}).status_code == 201


def test_api6_review_bucket_refills_with_time():
    from serving.services.shop.review_limit import ReviewLimiter, TooManyReviews

    limiter = ReviewLimiter(burst=2, per_hour=2)  # one review every 30 minutes after the burst
    limiter.check(7, now=0.0)
    limiter.check(7, now=1.0)
    with pytest.raises(TooManyReviews) as refused:
        limiter.check(7, now=2.0)
    assert 1790 <= refused.value.extensions["retry_after"] <= 1800
    limiter.check(8, now=2.0)  # per account
    limiter.check(7, now=1802.0)  # half an hour later: one more
    with pytest.raises(TooManyReviews):
        limiter.check(7, now=1803.0)
