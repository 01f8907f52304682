"""POST /api/v1/orders answers the same whether the fast path or the route places it.

Every test runs twice: with ``checkout_fast_path`` on (the usual checkout skips FastAPI's
routing, serving/middleware/checkout_fast_path.py) and off (the route does everything). The
fast path must place the usual order and pass every other request on, so that errors stay the
route's own.
"""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from serving.app import create_app

from .conftest import order_body, place, tokenise


@pytest.fixture(params=[True, False], ids=["fast_path", "route"])
def app(request, settings):
    return create_app(settings.model_copy(update={"checkout_fast_path": request.param}))


def _handled(outcome: str) -> float:
    value = REGISTRY.get_sample_value("storeloop_checkout_fast_path_total", {"outcome": outcome})
    return value or 0.0


def _stock(admin, pid: int) -> dict:
    r = admin.get(f"/api/v1/inventory/{pid}/movements")
    assert r.status_code == 200, r.text
    return r.json()["stock"]


def test_an_order_and_its_replay_are_answered_alike(app, client, customer, make_product):
    fast = app.state.components.settings.checkout_fast_path
    pid = make_product(5)
    body = order_body(tokenise(client), [(pid, 2)])
    key = uuid.uuid4().hex
    placed_before = _handled("placed")

    first = place(customer, body, key)
    assert first.status_code == 201, first.text
    order = first.json()
    assert first.headers["location"] == f"/api/v1/orders/{order['id']}"
    assert first.headers["content-type"] == "application/json"
    assert "idempotent-replayed" not in first.headers
    assert first.headers["x-request-id"]  # the outer middlewares still wrap the request
    assert first.headers["x-content-type-options"] == "nosniff"
    assert order["status"] == "fulfilled" and order["payment"]["status"] == "succeeded"
    assert [(i["product_id"], i["quantity"]) for i in order["items"]] == [(pid, 2)]
    shown = customer.get(f"/api/v1/orders/{order['id']}")
    assert shown.json() == order

    again = place(customer, body, key)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == order
    assert _handled("placed") - placed_before == (2 if fast else 0)


@pytest.mark.parametrize(
    ("case", "status", "title"),
    [
        ("no_key", 400, "Idempotency-Key missing"),
        ("malformed_json", 400, "Malformed JSON"),
        ("unknown_field", 422, "Validation failed"),
        ("bad_token", 401, None),
        ("no_token", 401, None),
        ("unknown_product", 404, None),
        ("declined_card", 402, None),
    ],
)
def test_bad_checkouts_get_the_routes_problems(
    app, client, admin, customer, make_product, case, status, title
):
    pid = make_product(3)
    pm = tokenise(client, "generic_decline" if case == "declined_card" else "ok")
    body = order_body(pm, [(999_999 if case == "unknown_product" else pid, 1)])
    headers = {"Authorization": f"Bearer {customer.token}", "Idempotency-Key": uuid.uuid4().hex}
    content = None
    if case == "no_key":
        del headers["Idempotency-Key"]
    elif case == "malformed_json":
        content = b'{"shipping_address": '
    elif case == "unknown_field":
        body["coupon"] = "FREE"
    elif case == "bad_token":
        headers["Authorization"] = "Bearer not-a-token"
    elif case == "no_token":
        del headers["Authorization"]
    before = {outcome: _handled(outcome) for outcome in ("placed", "passed_on")}
    if content is None:
        r = client.post("/api/v1/orders", json=body, headers=headers)
    else:
        r = client.post(
            "/api/v1/orders",
            content=content,
            headers={**headers, "Content-Type": "application/json"},
        )
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == status
    if case != "declined_card":  # a decline is the saga's stored answer, replayed as stored
        assert problem["instance"] == "/api/v1/orders"
    if title is not None:
        assert problem["title"] == title
    assert _stock(admin, pid)["reserved"] == 0  # nothing held for a refused order
    # The batch itself answers an unknown product; everything else is the route's to answer.
    answered_by = "placed" if case == "unknown_product" else "passed_on"
    fast = app.state.components.settings.checkout_fast_path
    assert {k: _handled(k) - v for k, v in before.items()} == {
        "placed": float(fast and answered_by == "placed"),
        "passed_on": float(fast and answered_by == "passed_on"),
    }


def _requests(route: str, status: str) -> float:
    labels = {"method": "POST", "route": route, "status": status}
    return REGISTRY.get_sample_value("storeloop_http_requests_total", labels) or 0.0


def test_placed_orders_are_counted_and_logged_under_the_orders_route(
    app, client, customer, make_product, caplog
):
    """Regression (issue 18): orders the fast path placed were counted and logged as
    ``route="unmatched"``, so a per-route dashboard showed checkout as 100 % errors."""
    import logging

    pid = make_product(5)
    body = order_body(tokenise(client), [(pid, 1)])
    before = (_requests("/api/v1/orders", "201"), _requests("unmatched", "201"))
    with caplog.at_level(logging.INFO, logger="storeloop.access"):
        r = place(customer, body)
    assert r.status_code == 201, r.text
    after = (_requests("/api/v1/orders", "201"), _requests("unmatched", "201"))
    assert (after[0] - before[0], after[1] - before[1]) == (1.0, 0.0)
    (record,) = [rec for rec in caplog.records if rec.fields["path"] == "/api/v1/orders"]
    assert record.fields["route"] == "/api/v1/orders" and record.fields["status"] == 201
