"""The address book (one default, owner-only) and the wishlist (its adds are events)."""

from __future__ import annotations

import time

import orjson

from devtools.waits import scaled

PROBLEM = "application/problem+json"
HOME = {
    "label": "Home",
    "name": "Ada Lovelace",
    "line1": "1 Main St",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "de",
}
WORK = {
    "label": "Work",
    "name": "Ada Lovelace",
    "line1": "2 Office Rd",
    "city": "Paris",
    "postal_code": "75001",
    "country": "FR",
}


def test_first_address_is_the_default_and_default_moves(customer):
    home = customer.post("/api/v1/me/addresses", json=HOME)
    assert home.status_code == 201, home.text
    assert home.json()["is_default"] is True and home.json()["country"] == "DE"
    work = customer.post("/api/v1/me/addresses", json=WORK).json()
    assert work["is_default"] is False
    r = customer.post(f"/api/v1/me/addresses/{work['id']}/default")
    assert r.status_code == 200 and r.json()["is_default"] is True
    book = customer.get("/api/v1/me/addresses").json()
    assert [(a["label"], a["is_default"]) for a in book] == [("Work", True), ("Home", False)]
    # deleting the default promotes the other one: a non-empty book always has a default
    assert customer.delete(f"/api/v1/me/addresses/{work['id']}").status_code == 204
    book = customer.get("/api/v1/me/addresses").json()
    assert [(a["label"], a["is_default"]) for a in book] == [("Home", True)]


def test_new_default_on_create_and_patch(customer):
    customer.post("/api/v1/me/addresses", json=HOME)
    work = customer.post("/api/v1/me/addresses", json={**WORK, "is_default": True}).json()
    assert work["is_default"] is True
    r = customer.patch(f"/api/v1/me/addresses/{work['id']}", json={"city": "Lyon", "line2": "3F"})
    assert r.status_code == 200 and (r.json()["city"], r.json()["line2"]) == ("Lyon", "3F")
    assert sum(a["is_default"] for a in customer.get("/api/v1/me/addresses").json()) == 1


def test_addresses_are_private(customer, make_customer, client):
    mine = customer.post("/api/v1/me/addresses", json=HOME).json()
    other = make_customer()
    for method, url, body in (
        ("get", "/api/v1/me/addresses", None),
        ("patch", f"/api/v1/me/addresses/{mine['id']}", {"city": "Rome"}),
        ("post", f"/api/v1/me/addresses/{mine['id']}/default", None),
        ("delete", f"/api/v1/me/addresses/{mine['id']}", None),
    ):
        r = getattr(other, method)(url, **({"json": body} if body else {}))
        if method == "get":
            assert r.json() == []
        else:
            assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert customer.get("/api/v1/me/addresses").json()[0]["city"] == "Berlin"
    assert client.get("/api/v1/me/addresses").status_code == 401


def test_address_validation_is_a_422(customer):
    for bad in (
        {**HOME, "country": "Germany"},
        {**HOME, "name": ""},
        {**HOME, "zip": "1"},
        {**HOME, "city": "a\x00b"},
    ):
        r = customer.post("/api/v1/me/addresses", json=bad)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM


def test_quote_goes_to_the_default_address(customer, small_catalog):
    customer.post("/api/v1/me/addresses", json=HOME)
    work = customer.post("/api/v1/me/addresses", json=WORK).json()
    hp1 = small_catalog["products"]["HP-1"]["id"]
    items = [{"product_id": hp1, "quantity": 1}]
    assert customer.post("/api/v1/checkout/quote", json={"items": items}).json()["country"] == "DE"
    r = customer.post("/api/v1/checkout/quote", json={"items": items, "address_id": work["id"]})
    assert r.json()["country"] == "FR"


def _events(app, kind: str, want: int) -> list[dict]:
    deadline = time.monotonic() + scaled(10)
    found: list[dict] = []
    while time.monotonic() < deadline:
        found = [
            orjson.loads(line)
            for path in app.state.components.event_log.events_dir.iterdir()
            for line in path.read_bytes().splitlines()
            if line.strip()
        ]
        found = [r for r in found if r["type"] == kind]
        if len(found) >= want:
            break
        time.sleep(0.05)
    return found


def test_wishlist_adds_are_events(app, customer, small_catalog):
    hp1 = small_catalog["products"]["HP-1"]["id"]
    hp2 = small_catalog["products"]["HP-2"]["id"]  # out of stock: still wishable
    assert (
        customer.client.put(f"/api/v1/me/wishlist/{hp1}", headers=customer.headers).status_code
        == 200
    )
    r = customer.client.put(f"/api/v1/me/wishlist/{hp2}", headers=customer.headers)
    items = r.json()["items"]
    assert {i["product_id"]: i["in_stock"] for i in items} == {hp1: True, hp2: False}
    # a second add changes nothing and writes no second event
    customer.client.put(f"/api/v1/me/wishlist/{hp1}", headers=customer.headers)
    r = customer.delete(f"/api/v1/me/wishlist/{hp2}")
    assert [i["product_id"] for i in r.json()["items"]] == [hp1]
    adds = _events(app, "wishlist_add", 2)
    assert sorted(e["product_id"] for e in adds) == sorted([str(hp1), str(hp2)])  # ids are strings
    me = customer.get("/api/v1/me").json()["id"]
    assert {e["user_id"] for e in adds} == {str(me)}
    assert [e["product_id"] for e in _events(app, "wishlist_remove", 1)] == [str(hp2)]


def test_wishlist_problems(client, customer):
    assert client.get("/api/v1/me/wishlist").status_code == 401
    r = customer.client.put("/api/v1/me/wishlist/999999", headers=customer.headers)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert customer.client.put("/api/v1/me/wishlist/0", headers=customer.headers).status_code == 422
    assert customer.delete("/api/v1/me/wishlist/5").json() == {"items": []}
