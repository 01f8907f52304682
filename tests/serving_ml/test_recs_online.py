"""Online evaluation (issue 21): live CTR per version and surface, and an A/B split."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from serving.core.config import Settings
from serving.services.ml.recs.online import ABSplit, OnlineCounters, RecId, RecIds, ab_report
from tests.serving_ml.conftest import publish_model, wait_for


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Half the shoppers on version v0002 of the model once it is published."""
    return settings.model_copy(update={"recs_ab_version": "v0002", "recs_ab_share": 0.5})


def _event(kind: str, rec_id: str, product_id: int, position: int = 0) -> dict:
    event = {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "client_ts": datetime.now(UTC).isoformat(),
        "rec_id": rec_id,
        "product_id": str(product_id),
    }
    if kind == "rec_impression":
        event["position"] = position
    return event


def _post(client, events: list[dict]) -> None:
    r = client.post(
        "/api/v1/events", json={"events": events}, headers={"X-Session-Id": "sess_" + "c" * 20}
    )
    assert r.status_code == 202, r.text


def _show(client, body: dict, clicks: int = 0) -> None:
    """The storefront's part: an impression per item, then clicks on the first ones."""
    events = [
        _event("rec_impression", body["rec_id"], item["product_id"], i)
        for i, item in enumerate(body["items"])
    ]
    events += [_event("rec_click", body["rec_id"], item["product_id"]) for item in body["items"]][
        :clicks
    ]
    _post(client, events)


def _live(admin) -> dict:
    r = admin.get("/api/v1/admin/ops")
    assert r.status_code == 200, r.text
    return r.json()["online_live"]


def test_rec_ids_name_the_surface_and_version_they_were_served_with(app, client, small_catalog):
    rec_ids = app.state.components.recs.rec_ids
    pid = small_catalog["products"]["HP-1"]["id"]
    cases = [
        ("/api/v1/recommendations/popular", {}, "home"),
        ("/api/v1/recommendations/popular", {"surface": "search"}, "search"),
        (f"/api/v1/recommendations/products/{pid}/similar", {}, "product"),
        (f"/api/v1/recommendations/products/{pid}/bought-together", {"surface": "cart"}, "cart"),
    ]
    for url, params, surface in cases:
        body = client.get(url, params=params).json()
        assert rec_ids.parse(body["rec_id"]) == RecId(surface, body["model_version"])
    r = client.get("/api/v1/recommendations/popular", params={"surface": "<script>"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"


def test_live_ctr_moves_with_accepted_events_per_version_and_surface(
    client, small_catalog, customer, admin
):
    uid = customer.get("/api/v1/me").json()["id"]
    pid = small_catalog["products"]["HP-1"]["id"]
    home = customer.get(f"/api/v1/recommendations/users/{uid}", params={"k": 4}).json()
    product = client.get(f"/api/v1/recommendations/products/{pid}/similar").json()
    assert _live(admin)["by_version_surface"] == []
    _show(client, home, clicks=1)
    _show(client, product)
    click = _event("rec_click", product["rec_id"], product["items"][0]["product_id"])
    _post(client, [click])
    _post(client, [click])  # a client retry of the same event counts once
    # Ids the shop did not mint are not counted: plain ones, and forged ones naming a version.
    forged = "f" * 32 + ".home.popular-db"
    _post(client, [_event("rec_click", forged, pid), _event("rec_click", "abc", pid)])
    rows = {(r["model_version"], r["surface"]): r for r in _live(admin)["by_version_surface"]}
    assert rows[("popular-db", "home")]["impressions"] == len(home["items"])
    assert rows[("popular-db", "home")]["clicks"] == 1
    assert rows[("popular-db", "product")]["impressions"] == len(product["items"])
    assert rows[("popular-db", "product")]["clicks"] == 1
    assert rows[("popular-db", "home")]["ctr"] == round(1 / len(home["items"]), 4)


def test_counters_of_every_worker_are_summed(tmp_path):
    rec_ids = RecIds("a shared secret " * 3)
    one, two = OnlineCounters(tmp_path, rec_ids), OnlineCounters(tmp_path, rec_ids)
    rec = rec_ids.new("home", "als:v0001")
    one.record([{"type": "rec_impression", "rec_id": rec, "event_id": "a"}])
    two.record([{"type": "rec_impression", "rec_id": rec, "event_id": "b"}])
    two.record([{"type": "rec_click", "rec_id": rec, "event_id": "c"}])
    two.flush()
    counts, _ = one.totals()
    assert counts == {("als:v0001", "home"): [2, 1]}
    other_shop = RecIds("another secret " * 3)
    assert other_shop.parse(rec) is None and rec_ids.parse(rec) == RecId("home", "als:v0001")


def test_ab_split_serves_two_published_versions_by_user_hash(
    client, small_catalog, admin, settings
):
    p = [small_catalog["products"][s]["id"] for s in ("HP-1", "HP-3", "SP-1", "HM-1")]
    pairs = [(u, p[u % 4]) for u in range(6000, 6040)] + [
        (u, p[(u + 1) % 4]) for u in range(6000, 6040)
    ]
    publish_model(settings, pairs)  # v0001, serving
    publish_model(settings, pairs, promote=False, factors=4)  # v0002, the challenger
    status = "/api/v1/recommendations/status"
    wait_for(
        lambda: (admin.get(status).json()["ab_test"] or {}).get("loaded") == "als:v0002",
        what="challenger loaded",
    )
    wait_for(lambda: admin.get(status).json()["model_version"] == "als:v0001", what="v1")
    served: dict[int, str] = {}
    for user in range(6000, 6040):
        body = admin.get(f"/api/v1/recommendations/users/{user}", params={"k": 2}).json()
        served[user] = body["model_version"]
        again = admin.get(f"/api/v1/recommendations/users/{user}", params={"k": 2}).json()
        assert again["model_version"] == served[user]  # one arm per shopper
        _show(client, body, clicks=1 if body["model_version"] == "als:v0002" else 0)
    arms = set(served.values())
    assert arms == {"als:v0001", "als:v0002"}
    share = sum(v == "als:v0002" for v in served.values()) / len(served)
    assert 0.2 < share < 0.8
    ab = _live(admin)["ab_test"]
    by_arm = {a["arm"]: a for a in ab["arms"]}
    assert by_arm["control"]["model_version"] == "als:v0001"
    assert by_arm["challenger"]["model_version"] == "als:v0002"
    assert by_arm["challenger"]["clicks"] == len(served) - list(served.values()).count("als:v0001")
    assert by_arm["control"]["clicks"] == 0 and by_arm["control"]["impressions"] > 0
    assert ab["z"] > 0 and 0 <= ab["p_value"] < 0.05


def test_ab_report_figures():
    counts = {
        ("a:v1", "home"): [1000, 50],
        ("a:v2", "home"): [900, 30],
        ("a:v2", "cart"): [100, 10],
    }
    report = ab_report(counts, "a:v1", "a:v2", 0.5)
    control, challenger = report["arms"]
    assert (control["impressions"], control["clicks"], control["ctr"]) == (1000, 50, 0.05)
    assert (challenger["impressions"], challenger["clicks"], challenger["ctr"]) == (1000, 40, 0.04)
    assert report["lift"] == -0.2
    assert report["z"] == pytest.approx(-1.079, abs=1e-3)  # pooled 0.045, se 0.00927
    assert report["p_value"] == pytest.approx(0.281, abs=1e-3)
    split = ABSplit("v2", 0.3)
    picks = [split.in_challenger(u, None) for u in range(10_000)]
    assert picks == [split.in_challenger(u, None) for u in range(10_000)]
    assert 0.28 < sum(picks) / len(picks) < 0.32
    assert not ABSplit("", 0.5).in_challenger(1, None)
