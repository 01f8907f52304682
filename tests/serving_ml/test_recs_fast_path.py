"""GET /api/v1/recommendations/users/{id} answers the same whether the fast path or the route does.

Every test runs twice: with ``recs_fast_path`` on (the usual request skips FastAPI's routing,
serving/middleware/recs_fast_path.py) and off (the route does everything). The fast path must
answer the usual request exactly as the route would and pass every other request on, so that
errors stay the route's own.
"""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from serving.app import create_app
from tests.serving_ml.conftest import publish_model, wait_for

ROUTE = "/api/v1/recommendations/users/{user_id}"


@pytest.fixture(params=[True, False], ids=["fast_path", "route"])
def app(request, settings):
    return create_app(settings.model_copy(update={"recs_fast_path": request.param}))


def _handled(outcome: str) -> float:
    value = REGISTRY.get_sample_value("storeloop_recs_fast_path_total", {"outcome": outcome})
    return value or 0.0


def _requests(status: int) -> float:
    labels = {"method": "GET", "route": ROUTE, "status": str(status)}
    return REGISTRY.get_sample_value("storeloop_http_requests_total", labels) or 0.0


def _served(app, small_catalog, admin, settings) -> str:
    p = [small_catalog["products"][s]["id"] for s in ("HP-1", "HP-3", "SP-1", "HM-1")]
    pairs = [(u, p[u % 4]) for u in range(7000, 7030)] + [
        (u, p[(u + 1) % 4]) for u in range(7000, 7030)
    ]
    publish_model(settings, pairs)
    url = "/api/v1/recommendations/users/7001"
    wait_for(lambda: admin.get(url).json()["model_version"] == "als:v0001", what="v1")
    return url


def _same_list(a: dict, b: dict) -> None:
    assert a["items"] == b["items"]
    assert (a["strategy"], a["model_version"]) == (b["strategy"], b["model_version"])


def test_the_usual_request_is_answered_as_the_route_answers_it(
    app, client, small_catalog, admin, customer, settings
):
    fast = app.state.components.settings.recs_fast_path
    url = _served(app, small_catalog, admin, settings)
    answered, counted = _handled("answered"), _requests(200)
    quick = admin.get(url, params={"k": 3, "surface": "cart"})
    # An unknown query parameter is ignored by the route but not taken by the fast path.
    routed = admin.get(url, params={"k": 3, "surface": "cart", "x": "1"})
    assert quick.status_code == routed.status_code == 200, quick.text
    assert quick.headers["content-type"] == "application/json"
    assert quick.headers["x-request-id"]  # the outer middlewares still wrap the request
    assert quick.headers["x-content-type-options"] == "nosniff"
    _same_list(quick.json(), routed.json())
    assert len(quick.json()["items"]) == 3 and quick.json()["rec_id"] != routed.json()["rec_id"]
    own = f"/api/v1/recommendations/users/{customer.get('/api/v1/me').json()['id']}"
    mine = customer.get(own)
    assert mine.status_code == 200 and len(mine.json()["items"]) > 0
    assert _handled("answered") - answered == (2 if fast else 0)
    assert _requests(200) - counted == 3  # the fast path names its route in the metrics


#: (who asks, the path's user id, query, the route's status): one shop for all, kept cheap.
BAD_REQUESTS = [
    ("anonymous", "7001", {}, 401),
    ("bad_token", "7001", {}, 401),
    ("customer", "7001", {}, 403),
    ("admin", "0", {}, 422),
    ("admin", "2147483648", {}, 422),
    ("admin", "7001", {"k": "0"}, 422),
    ("admin", "7001", {"k": "101"}, 422),
    ("admin", "7001", {"k": ""}, 422),
    ("admin", "7001", {"surface": "banner"}, 422),
]


def test_other_requests_get_the_routes_problems(
    app, client, small_catalog, admin, customer, settings
):
    fast = app.state.components.settings.recs_fast_path
    _served(app, small_catalog, admin, settings)
    for who, path, params, status in BAD_REQUESTS:
        actor = {"admin": admin, "customer": customer}.get(who)
        headers = {"Authorization": "Bearer not-a-token"} if who == "bad_token" else {}
        passed_on = _handled("passed_on")
        get = actor.get if actor is not None else client.get
        r = get(f"/api/v1/recommendations/users/{path}", params=params, headers=headers)
        assert r.status_code == status, (who, path, params, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert _handled("passed_on") - passed_on == (1 if fast else 0), (who, path, params)
