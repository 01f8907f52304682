"""Recommendation endpoints: strategies, business rules, fresh activity and hot reload."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

from serving.db.tables.orders import Order
from tests.serving_ml.conftest import insert_order, publish_model, wait_for

SESSION = "sess_" + "a" * 20


def _ids(r) -> list[int]:
    return [item["product_id"] for item in r.json()["items"]]


def _pid(catalog: dict, sku: str) -> int:
    return catalog["products"][sku]["id"]


def _user_id(actor) -> int:
    return actor.get("/api/v1/me").json()["id"]


def _insert_order(
    app, user_id: int, product_ids: list[int], status: str = "paid", stamp: datetime | None = None
) -> None:
    insert_order(app, user_id, product_ids, when=stamp, status=status)


def _serving_version(client, user) -> str:
    return user.get(f"/api/v1/recommendations/users/{_user_id(user)}").json()["model_version"]


def test_without_model_users_get_in_stock_popular_items(client, small_catalog, customer):
    uid = _user_id(customer)
    r = customer.get(f"/api/v1/recommendations/users/{uid}", params={"k": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["strategy"] == "popular" and body["model_version"] == "popular-db"
    ids = _ids(r)
    assert ids and _pid(small_catalog, "HP-2") not in ids  # HP-2 has no stock
    item = body["items"][0]
    assert set(item) == {
        "product_id",
        "score",
        "title",
        "price_minor",
        "currency",
        "image_url",
        "available",
    }
    assert all(i["available"] > 0 for i in body["items"])
    again = customer.get(f"/api/v1/recommendations/users/{uid}").json()
    assert again["rec_id"] != body["rec_id"]


def test_users_may_only_ask_for_themselves(client, small_catalog, make_customer, admin):
    ada, bob = make_customer(), make_customer()
    r = ada.get(f"/api/v1/recommendations/users/{_user_id(bob)}")
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert client.get(f"/api/v1/recommendations/users/{_user_id(bob)}").status_code == 401
    assert admin.get(f"/api/v1/recommendations/users/{_user_id(bob)}").status_code == 200
    # An id nobody has: admins still get an answer (popular), never an error.
    r = admin.get("/api/v1/recommendations/users/987654")
    assert r.status_code == 200 and _ids(r)


def test_known_user_gets_model_items_minus_seen_bought_and_out_of_stock(
    app, client, small_catalog, customer, settings
):
    uid = _user_id(customer)
    p = {sku: _pid(small_catalog, sku) for sku in small_catalog["products"]}
    pairs = [(uid, p["HP-1"])]
    # Others who bought HP-1 also bought the speaker, HP-2 and the blanket.
    for other in range(1000, 1010):
        pairs += [(other, p["HP-1"]), (other, p["SP-1"]), (other, p["HP-2"]), (other, p["HM-1"])]
    publish_model(settings, pairs)
    wait_for(lambda: _serving_version(client, customer) == "als:v0001", what="model load")
    r = customer.get(f"/api/v1/recommendations/users/{uid}", params={"k": 3})
    body = r.json()
    assert body["strategy"].startswith("model")
    ids = _ids(r)
    assert p["HP-1"] not in ids  # seen in training
    assert p["HP-2"] not in ids  # out of stock
    assert len(ids) == 3
    _insert_order(app, uid, [p["SP-1"]])
    app.state.components.recs.clear_caches()  # drop the two-second owner cache
    ids = _ids(customer.get(f"/api/v1/recommendations/users/{uid}", params={"k": 3}))
    assert p["SP-1"] not in ids  # already bought


def test_category_filter_and_exclusions(client, small_catalog, customer):
    uid = _user_id(customer)
    r = customer.get(
        f"/api/v1/recommendations/users/{uid}",
        params={"category": "audio", "exclude": [_pid(small_catalog, "HP-1")]},
    )
    ids = _ids(r)
    audio = {_pid(small_catalog, s) for s in ("HP-1", "HP-2", "HP-3", "SP-1")}
    assert ids and set(ids) <= audio - {_pid(small_catalog, "HP-1")}
    assert (
        customer.get(
            f"/api/v1/recommendations/users/{uid}", params={"category": "nope"}
        ).status_code
        == 404
    )


def test_session_views_fold_into_recommendations_within_seconds(client, small_catalog, settings):
    p = {sku: _pid(small_catalog, sku) for sku in small_catalog["products"]}
    pairs = []
    for other in range(2000, 2010):
        pairs += [(other, p["HM-1"]), (other, p["SP-1"])]
    for other in range(2010, 2020):
        pairs += [(other, p["HP-1"]), (other, p["HP-3"])]
    publish_model(settings, pairs, name="item2item")
    headers = {"X-Session-Id": SESSION}
    wait_for(
        lambda: (
            client.get("/api/v1/recommendations/session", headers=headers).json()["model_version"]
            == "als:v0001"
        ),
        what="model load",
    )
    before = client.get("/api/v1/recommendations/session", headers=headers).json()
    assert before["strategy"] == "popular"
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "product_view",
        "client_ts": datetime.now(UTC).isoformat(),
        "product_id": str(p["HM-1"]),
    }
    r = client.post("/api/v1/events", json={"events": [event]}, headers=headers)
    assert r.status_code == 202, r.text
    after = client.get("/api/v1/recommendations/session", params={"k": 1}, headers=headers)
    assert after.json()["strategy"].startswith("session")
    assert _ids(after) == [p["SP-1"]]


def test_similar_and_bought_together(app, client, small_catalog, customer, settings):
    p = {sku: _pid(small_catalog, sku) for sku in small_catalog["products"]}
    r = client.get(f"/api/v1/recommendations/products/{p['HP-1']}/similar", params={"k": 2})
    assert r.status_code == 200 and r.json()["strategy"] == "category-popular"
    assert p["HP-1"] not in _ids(r)
    assert client.get("/api/v1/recommendations/products/99999/similar").status_code == 404
    # Co-purchases come from the orders, out-of-stock ones (HP-2) never show.
    uid = _user_id(customer)
    _insert_order(app, uid, [p["HP-1"], p["HM-1"], p["HP-2"]])
    _insert_order(app, uid, [p["HP-1"], p["HM-1"]])
    _insert_order(app, uid, [p["HP-1"], p["SP-1"]])
    r = client.get(f"/api/v1/recommendations/products/{p['HP-1']}/bought-together")
    body = r.json()
    assert body["strategy"].startswith("bought-together")
    assert _ids(r)[:2] == [p["HM-1"], p["SP-1"]]
    assert p["HP-2"] not in _ids(r) and p["HP-1"] not in _ids(r)
    # Popular now ranks by units sold (once its 30-second cache is dropped).
    app.state.components.recs.clear_caches()
    top = _ids(client.get("/api/v1/recommendations/popular", params={"k": 2}))
    assert top == [p["HP-1"], p["HM-1"]]
    cat = _ids(client.get("/api/v1/recommendations/popular", params={"category": "speakers"}))
    assert cat == [p["SP-1"]]
    trending = client.get("/api/v1/recommendations/trending", params={"k": 3}).json()
    assert trending["strategy"].startswith("trending") and trending["items"]


def test_hot_reload_under_load_has_zero_failed_requests(client, small_catalog, admin, settings):
    p = [_pid(small_catalog, s) for s in ("HP-1", "HP-3", "SP-1", "HM-1")]
    pairs = [(u, p[u % 4]) for u in range(3000, 3040)] + [
        (u, p[(u + 1) % 4]) for u in range(3000, 3040)
    ]
    publish_model(settings, pairs)
    url = "/api/v1/recommendations/users/3001"
    wait_for(lambda: admin.get(url).json()["model_version"] == "als:v0001", what="v1")
    statuses: list[int] = []
    versions: set[str] = set()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            r = admin.get(url, params={"k": 3})
            statuses.append(r.status_code)
            if r.status_code == 200:
                versions.add(r.json()["model_version"])

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        # On a busy machine (two test workers on two cores) the swap could otherwise come
        # before the hammering threads' first answer, and v1 would never be seen under load.
        wait_for(lambda: "als:v0001" in versions, what="v1 served under load")
        publish_model(settings, pairs, factors=4)
        wait_for(lambda: "als:v0002" in versions, what="v2 served under load")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert statuses and set(statuses) == {200}
    assert {"als:v0001", "als:v0002"} <= versions


def test_a_new_version_serves_only_once_its_candidates_are_warm(
    client, small_catalog, admin, settings, monkeypatch
):
    from serving.services.ml.recs.candidates import CandidateCache

    gate = threading.Event()  # holds every warm-up until the test lets it go
    plain_warm = CandidateCache.warm

    def held_warm(self, still_wanted, batch: int = 256) -> None:
        gate.wait()
        plain_warm(self, still_wanted, batch)

    monkeypatch.setattr(CandidateCache, "warm", held_warm)
    p = [_pid(small_catalog, s) for s in ("HP-1", "HP-3", "SP-1", "HM-1")]
    pairs = [(u, p[u % 4]) for u in range(6000, 6030)] + [
        (u, p[(u + 1) % 4]) for u in range(6000, 6030)
    ]
    publish_model(settings, pairs)
    urls = [f"/api/v1/recommendations/users/{u}" for u in range(6000, 6030)]
    # The first version serves at once (nothing warmer to keep), warming behind.
    wait_for(lambda: admin.get(urls[0]).json()["model_version"] == "als:v0001", what="v1")
    recs = client.app.state.components.recs
    try:
        publish_model(settings, pairs, factors=4)
        wait_for(lambda: recs.models.pending is not None, what="v2 loaded, warming")
        assert admin.get(urls[1]).json()["model_version"] == "als:v0001"
        assert admin.get("/api/v1/recommendations/status").json()["warming"] == {
            "model_version": "als:v0002",
            "users": 0,
            "warmed": 0,
        }
    finally:
        gate.set()
    wait_for(lambda: recs.current.version == "v0002", what="v2 swapped in once warm")
    cands = recs.current.candidates
    assert cands.warm_seconds is not None and len(cands) == 30
    for url in urls:
        assert admin.get(url, params={"k": 3}).json()["model_version"] == "als:v0002"
    # Every known user's answer came from the warm cache: none was scored on request.
    assert cands.computed == 0 and cands.hits == len(urls)
    assert recs.models.pending is None


def test_corrupt_artifact_is_refused_and_previous_keeps_serving(
    client, small_catalog, admin, settings
):
    p = [_pid(small_catalog, s) for s in ("HP-1", "HP-3", "SP-1")]
    pairs = [(u, p[u % 3]) for u in range(4000, 4030)]
    publish_model(settings, pairs)
    url = "/api/v1/recommendations/users/4001"
    wait_for(lambda: admin.get(url).json()["model_version"] == "als:v0001", what="v1")
    v2 = publish_model(settings, pairs, promote=False)
    folder = settings.data_dir / "registry" / "recs" / settings.recs_model_name
    (folder / v2 / "arrays.npz").write_bytes(b"half-written")
    # Point at it the way a crashed or buggy publisher would, bypassing promote's checks.
    (folder / "serving.json").write_text(json.dumps({"version": v2, "previous": ["v0001"]}))
    serving = client.app.state.components.recs
    wait_for(lambda: v2 in serving.refused, what="refusal")
    r = admin.get(url)
    assert r.status_code == 200 and r.json()["model_version"] == "als:v0001"


def test_live_catalog_follows_stock_and_product_edits_incrementally(app, small_catalog, admin):
    from serving.services.ml.recs.live_catalog import LiveCatalog

    live = LiveCatalog(
        app.state.components.db.engine, interval=1.0
    )  # background mode: explicit passes
    live.refresh()
    hp1, hp2, sp1 = (_pid(small_catalog, s) for s in ("HP-1", "HP-2", "SP-1"))
    assert live.get([hp1])[hp1].sellable and not live.get([hp2])[hp2].sellable
    r = admin.post(f"/api/v1/inventory/{hp1}/adjustments", json={"delta": -10})
    assert r.status_code == 200, r.text
    r = admin.patch(f"/api/v1/products/{sp1}", json={"status": "archived", "title": "Old"})
    assert r.status_code == 200, r.text
    before = live.version
    assert live.refresh()
    assert live.version == before + 1
    assert live.get([hp1])[hp1].available == 0 and not live.get([hp1])[hp1].sellable
    assert live.get([sp1])[sp1].archived and live.get([sp1])[sp1].title == "Old"
    row = live.table.rows[hp1]
    assert not live.table.sellable[row]
    assert not live.refresh()  # nothing changed since: nothing applied


def test_purchase_history_follows_new_and_cancelled_orders(app, client, small_catalog, customer):
    from sqlalchemy import update

    serving = app.state.components.recs
    uid = _user_id(customer)
    hp1 = _pid(small_catalog, "HP-1")
    serving.purchases.refresh()
    assert hp1 not in serving.purchases.get(uid)
    _insert_order(app, uid, [hp1])
    serving.purchases.refresh()  # incremental: only this user's orders are read again
    assert serving.purchases.get(uid) == [hp1]
    hp2 = _pid(small_catalog, "HP-2")
    _insert_order(app, uid, [hp2])
    serving.purchases.refresh()  # a second sale adds to the set; the first is not lost
    assert serving.purchases.get(uid) == sorted([hp1, hp2])
    with app.state.components.db.transaction() as s:
        s.execute(
            update(Order)
            .where(Order.user_id == uid)
            .values(status="cancelled", updated_at=datetime.now(UTC) + timedelta(seconds=1))
        )
    serving.purchases.refresh()
    assert serving.purchases.get(uid) == []


def test_purchase_history_catches_a_late_commit_on_its_next_sweep(
    app, client, small_catalog, customer
):
    """An order stamped before the watermark (a slow transaction committed late) is missed by
    the quick passes, which read only newer stamps, and found by the next overlap sweep."""
    from serving.services.ml.recs.purchases import PurchaseHistory

    purchases = PurchaseHistory(
        app.state.components.db.engine
    )  # passes made here, not in the background
    uid = _user_id(customer)
    hp1, hp2 = _pid(small_catalog, "HP-1"), _pid(small_catalog, "HP-2")
    purchases.refresh()
    _insert_order(app, uid, [hp1])
    purchases.refresh()
    assert purchases.get(uid) == [hp1]
    _insert_order(app, uid, [hp2], stamp=purchases.watermark - timedelta(seconds=2))
    purchases.refresh()  # a quick pass: only stamps at or after the watermark
    assert purchases.get(uid) == [hp1]
    purchases._swept_at = float("-inf")  # the sweep is due
    purchases.refresh()
    assert purchases.get(uid) == sorted([hp1, hp2])


def test_cached_candidates_give_the_same_answer_as_full_scoring():
    import numpy as np

    from features.interactions import interactions_from_triples
    from models.factory import build_model
    from models.inference import RecommendationService
    from serving.services.ml.recs.candidates import CandidateCache

    rng = np.random.default_rng(3)
    users = rng.integers(1, 60, 1500)
    items = rng.integers(1, 400, 1500)
    model = build_model("als", factors=8, iterations=3, num_threads=1)
    model.fit(interactions_from_triples(users, items))
    n = model.n_items
    service = RecommendationService(
        model,
        category=rng.integers(0, 6, n),
        brand=rng.integers(0, 10, n),
        available=rng.random(n) > 0.1,
        repeat_categories=[2],
        max_per_category=4,
        max_per_brand=3,
    )
    cache = CandidateCache(model, size=120)
    cache.warm(lambda: True, batch=16)
    assert len(cache) == len(model.users)
    compared = 0
    for user in model.users.ids:
        row = model.users.index_of(user)
        bought = list(rng.choice(model.items.ids, 5))
        exclude = list(rng.choice(model.items.ids, 3))
        idx, vals = cache.get(row)
        fast = service.recommend_from_candidates(idx, vals, 20, purchased=bought, exclude=exclude)
        full = service.recommend(user, 20, purchased=bought, exclude=exclude)
        if fast is not None:
            compared += 1
            assert fast.item_ids == full.item_ids
            assert np.allclose(fast.scores, full.scores, rtol=1e-5)
    assert compared > 0
    # A list too short for the rules says so instead of answering with fewer items.
    idx, vals = cache.get(0)
    assert service.recommend_from_candidates(idx[:5], vals[:5], 20) is None


def test_status_is_for_admins(client, small_catalog, customer, admin):
    assert customer.get("/api/v1/recommendations/status").status_code == 403
    assert client.get("/api/v1/recommendations/status").status_code == 401
    body = admin.get("/api/v1/recommendations/status").json()
    assert body["model_version"] == "popular-db" and body["catalog"]["products"] >= 5
