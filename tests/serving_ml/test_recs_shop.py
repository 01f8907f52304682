"""Recommendations in the shop (issue 21): buy it again, just-bought items, first-click fold-in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from serving.core.config import Settings
from tests.serving_ml.conftest import (
    add_buyers,
    add_product,
    insert_order,
    publish_model,
    wait_for,
)

CARD = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
ADDRESS = {
    "name": "Ada Shopper",
    "line1": "1 Main Street",
    "city": "Lisbon",
    "postal_code": "1000-001",
    "country": "PT",
}


def _ids(r) -> list[int]:
    assert r.status_code == 200, r.text
    return [item["product_id"] for item in r.json()["items"]]


def _uid(actor) -> int:
    return actor.get("/api/v1/me").json()["id"]


def _products(catalog: dict) -> dict[str, int]:
    return {sku: p["id"] for sku, p in catalog["products"].items()}


def _view(actor, product_id: int) -> None:
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "product_view",
        "client_ts": datetime.now(UTC).isoformat(),
        "product_id": str(product_id),
    }
    r = actor.post("/api/v1/events", json={"events": [event]})
    assert r.status_code == 202, r.text


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Catalog and purchases polled every 30 s, not every pass: what a request shows right
    after an order or a view must come from the request path itself, not from a lucky poll.
    Tests refresh the catalog by hand after making products."""
    return settings.model_copy(update={"live_data_seconds": 30.0})


def _ready(app):
    serving = app.state.components.recs
    wait_for(lambda: serving.purchases.loaded, what="purchases loaded")
    return serving


# ---------------------------------------------------------------- buy it again


def test_consumables_are_learned_and_come_back_while_durables_stay_out(
    app, client, small_catalog, admin, customer
):
    serving = _ready(app)
    p = _products(small_catalog)
    coffee_cat = admin.post("/api/v1/categories", json={"slug": "coffee", "name": "Coffee"})
    coffee = add_product(admin, "CO-1", coffee_cat.json()["id"], stock=50, title="House blend")
    now = datetime.now(UTC)
    # Ten shoppers buy the same coffee every month; ten buy the headphones once.
    for buyer in add_buyers(app, 10, start=9100):
        insert_order(app, buyer, [coffee], when=now - timedelta(days=65))
        insert_order(app, buyer, [coffee], when=now - timedelta(days=35))
    for buyer in add_buyers(app, 10, start=9200):
        insert_order(app, buyer, [p["HP-1"]], when=now - timedelta(days=40))
    uid = _uid(customer)
    insert_order(app, uid, [coffee, p["HP-1"]], when=now - timedelta(days=32))
    serving.live.refresh()
    serving.purchases.refresh()
    assert serving.learn_repeat()
    status = admin.get("/api/v1/recommendations/status").json()["repeat"]
    assert status["consumable_categories"] == [coffee_cat.json()["id"]]

    again = customer.get(f"/api/v1/recommendations/users/{uid}/buy-again")
    assert _ids(again) == [coffee]
    assert again.json()["strategy"] == "buy-again"
    # The personal list may show the coffee again, never the headphones already bought.
    mine = _ids(customer.get(f"/api/v1/recommendations/users/{uid}", params={"k": 10}))
    assert coffee in mine and p["HP-1"] not in mine


def test_a_category_the_catalog_marks_consumable_comes_back_from_the_first_purchase(
    app, client, small_catalog, admin, customer
):
    serving = _ready(app)
    tea_cat = admin.post("/api/v1/categories", json={"slug": "tea", "name": "Tea"}).json()["id"]
    r = admin.post(
        "/api/v1/products",
        json={
            "sku": "TEA-1",
            "title": "Green tea",
            "category_id": tea_cat,
            "price_minor": 499,
            "initial_stock": 30,
            "attributes": {"consumable": True},
        },
    )
    assert r.status_code == 201, r.text
    tea = r.json()["id"]
    uid = _uid(customer)
    insert_order(app, uid, [tea], when=datetime.now(UTC) - timedelta(days=20))
    serving.live.refresh()
    serving.purchases.refresh()
    serving.learn_repeat()  # nobody bought it twice yet: the attribute says it all
    status = admin.get("/api/v1/recommendations/status").json()["repeat"]
    assert status["marked_consumable"] == [tea_cat] and status["consumable_categories"] == []
    assert _ids(customer.get(f"/api/v1/recommendations/users/{uid}/buy-again")) == [tea]


def test_buy_again_is_empty_without_consumables_and_private(
    app, client, small_catalog, customer, make_customer
):
    serving = _ready(app)
    uid = _uid(customer)
    insert_order(app, uid, [_products(small_catalog)["HP-1"]])
    serving.purchases.refresh()
    serving.learn_repeat()
    r = customer.get(f"/api/v1/recommendations/users/{uid}/buy-again")
    assert r.status_code == 200 and r.json()["items"] == []
    other = make_customer()
    assert other.get(f"/api/v1/recommendations/users/{uid}/buy-again").status_code == 403
    assert client.get(f"/api/v1/recommendations/users/{uid}/buy-again").status_code == 401


# ---------------------------------------------------------------- just bought


def test_an_order_excludes_its_products_from_the_very_next_answer(
    app, client, small_catalog, customer
):
    serving = _ready(app)
    hp1 = _products(small_catalog)["HP-1"]
    serving.live.refresh()  # the catalog made after start-up (its poll is 30 s here)
    uid = _uid(customer)
    before = _ids(customer.get(f"/api/v1/recommendations/users/{uid}", params={"k": 10}))
    assert hp1 in before
    pm = customer.post("/api/v1/payments/methods", json=CARD)
    assert pm.status_code == 201, pm.text
    order = customer.post(
        "/api/v1/orders",
        json={
            "shipping_address": ADDRESS,
            "payment_method": pm.json()["payment_method"],
            "items": [{"product_id": hp1, "quantity": 1}],
        },
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert order.status_code == 201, order.text
    after = _ids(customer.get(f"/api/v1/recommendations/users/{uid}", params={"k": 10}))
    assert after and hp1 not in after


# ---------------------------------------------------------------- first-click fold-in


def _two_tastes(admin, small_catalog: dict, settings: Settings) -> dict[str, int]:
    """Audio fans (HP-1, SP-1, SP-2) and a larger crowd of home shoppers (HM-1..3)."""
    p = _products(small_catalog)
    cats = small_catalog["categories"]
    p["SP-2"] = add_product(admin, "SP-2", cats["speakers"])
    p["HM-2"] = add_product(admin, "HM-2", cats["home"])
    p["HM-3"] = add_product(admin, "HM-3", cats["home"])
    pairs = []
    for u in range(5000, 5010):
        pairs += [(u, p["HP-1"]), (u, p["SP-1"]), (u, p["SP-2"])]
    for u in range(5010, 5030):
        pairs += [(u, p["HM-1"]), (u, p["HM-2"]), (u, p["HM-3"])]
    publish_model(settings, pairs, name="item2item")  # HP-3 is not in it
    return p


def test_a_signed_in_newcomer_is_personal_from_the_first_click_even_on_unknown_items(
    app, client, small_catalog, admin, customer, settings
):
    serving = _ready(app)
    p = _two_tastes(admin, small_catalog, settings)
    serving.live.refresh()
    uid = _uid(customer)
    url = f"/api/v1/recommendations/users/{uid}"
    wait_for(lambda: customer.get(url).json()["model_version"] == "als:v0001", what="model")
    home = {p["HM-1"], p["HM-2"], p["HM-3"]}
    cold = customer.get(url, params={"k": 3})
    assert cold.json()["strategy"] == "popular" and set(_ids(cold)) == home
    _view(customer, p["HP-3"])  # headphones the model has never seen
    r = customer.get(url, params={"k": 2})
    assert set(_ids(r)) == {p["SP-1"], p["SP-2"]}, r.json()
    assert "neighbours" in r.json()["strategy"]


def test_a_newcomers_purchase_folds_in_without_any_view(
    app, client, small_catalog, admin, customer, settings
):
    serving = _ready(app)
    p = _two_tastes(admin, small_catalog, settings)
    serving.live.refresh()
    uid = _uid(customer)
    url = f"/api/v1/recommendations/users/{uid}"
    wait_for(lambda: customer.get(url).json()["model_version"] == "als:v0001", what="model")
    insert_order(app, uid, [p["HP-1"]])
    ids = _ids(customer.get(url, params={"k": 2}))
    assert set(ids) == {p["SP-1"], p["SP-2"]}


def test_anonymous_sessions_on_unknown_items_get_their_category_not_the_shop_best(
    app, client, small_catalog, admin, settings
):
    serving = _ready(app)
    p = _two_tastes(admin, small_catalog, settings)
    serving.live.refresh()
    headers = {"X-Session-Id": "sess_" + "b" * 20}
    url = "/api/v1/recommendations/session"
    wait_for(
        lambda: client.get(url, headers=headers).json()["model_version"] == "als:v0001",
        what="model",
    )
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "product_view",
        "client_ts": datetime.now(UTC).isoformat(),
        "product_id": str(p["HP-3"]),
    }
    r = client.post("/api/v1/events", json={"events": [event]}, headers=headers)
    assert r.status_code == 202, r.text
    r = client.get(url, params={"k": 2}, headers=headers)
    assert set(_ids(r)) == {p["SP-1"], p["SP-2"]}, r.json()
