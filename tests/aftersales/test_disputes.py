"""Disputes: a provider webhook, verified and read back, freezes the amount; evidence goes to
the provider; won gives the sellers' part back, lost keeps it withheld; forged events do
nothing."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select

from serving.core.clock import utcnow
from serving.db.tables.aftersales import Dispute
from serving.db.tables.payments import Payment
from serving.services.aftersales.runtime import aftersales_runtime
from serving.services.checkout.payments.webhooks import HEADER, sign
from tests.aftersales.conftest import seller_product, settle
from tests.checkout.conftest import order_body, place, tokenise


def _paid_order(app, client, customer, items):
    order = place(customer, order_body(tokenise(client), items)).json()
    with app.state.components.db.session() as s:
        intent_id = s.scalar(select(Payment.intent_id).where(Payment.order_id == order["id"]))
    return order, intent_id


def _open(app, intent_id, **kw):
    rt = aftersales_runtime(app)
    dispute = rt.desk.open(intent_id, **kw)
    rt.dispatcher.drain()
    return rt, dispute


def test_lost_dispute_keeps_the_sellers_part_withheld(
    app, client, admin, customer, make_seller, category
):
    alice = make_seller(1000)
    pa = seller_product(alice, category, price=4000)
    order, intent_id = _paid_order(app, client, customer, [(pa, 1)])
    settle(admin)
    owed_before = alice.get("/api/v1/seller/ledger").json()["owed_minor"]
    rt, dispute = _open(app, intent_id)
    shown = admin.get(f"/api/v1/admin/disputes/{dispute.id}").json()
    assert shown["status"] == "needs_response"
    assert shown["frozen_minor"] == dispute.amount_minor == order["total_minor"]
    part = 4000 * order["total_minor"] // order["total_minor"]
    assert alice.get("/api/v1/seller/ledger").json()["owed_minor"] == owed_before - part
    rt.desk.decide(dispute.id)  # no evidence: lost
    rt.dispatcher.drain()
    shown = admin.get(f"/api/v1/admin/disputes/{dispute.id}").json()
    assert shown["status"] == "lost" and shown["frozen_minor"] == 0
    assert shown["lost_minor"] == order["total_minor"]
    ledger = alice.get("/api/v1/seller/ledger").json()
    assert ledger["owed_minor"] == owed_before - part
    assert ledger["by_kind"]["dispute_hold"] == -part and "dispute_release" not in ledger["by_kind"]
    # Evidence after the decision is refused.
    r = admin.post(f"/api/v1/admin/disputes/{dispute.id}/evidence", json={"evidence": "late"})
    assert r.status_code == 409


def test_dispute_answered_with_evidence_is_won_and_the_hold_released(
    app, client, admin, customer, make_seller, category
):
    alice = make_seller(1000)
    pa = seller_product(alice, category, price=3000)
    order, intent_id = _paid_order(app, client, customer, [(pa, 1)])
    settle(admin)
    owed_before = alice.get("/api/v1/seller/ledger").json()["owed_minor"]
    rt, dispute = _open(app, intent_id, amount_minor=1000, reason="product_not_received")
    r = admin.post(
        f"/api/v1/admin/disputes/{dispute.id}/evidence",
        json={"evidence": "Signed delivery receipt SP123"},
    )
    assert r.status_code == 200 and r.json()["status"] == "under_review"
    rt.dispatcher.drain()
    rt.desk.decide(dispute.id)
    rt.dispatcher.drain()
    shown = admin.get(f"/api/v1/admin/disputes/{dispute.id}").json()
    assert shown["status"] == "won" and shown["frozen_minor"] == 0 and shown["lost_minor"] == 0
    ledger = alice.get("/api/v1/seller/ledger").json()
    assert ledger["owed_minor"] == owed_before
    assert ledger["by_kind"]["dispute_hold"] == -ledger["by_kind"]["dispute_release"] != 0


def _post(client, app, event: dict, secret: str | None = None):
    body = orjson.dumps(event)
    secret = secret or app.state.components.settings.payment_webhook_secret
    header = sign(secret, body, int(utcnow().timestamp()))
    return client.post(
        "/api/v1/payments/webhook",
        content=body,
        headers={HEADER: header, "content-type": "application/json"},
    )


def _event(dispute_id: str, status: str = "lost", event_id: str = "evt_forged1") -> dict:
    return {
        "id": event_id,
        "type": "charge.dispute.closed",
        "data": {"object": {"id": dispute_id, "status": status, "amount": 999999}},
    }


def test_forged_and_replayed_dispute_events_change_nothing(
    app, client, admin, customer, make_product
):
    pid = make_product(5)
    order, intent_id = _paid_order(app, client, customer, [(pid, 1)])
    # Unsigned or wrongly signed: 400; a dispute the provider does not know: 422.
    assert _post(client, app, _event("dp_nope"), secret="wrong").status_code == 400
    r = client.post("/api/v1/payments/webhook", content=orjson.dumps(_event("dp_x")))
    assert r.status_code == 400
    r = _post(client, app, _event("dp_unknown"))
    assert r.status_code == 422 and r.json()["code"] == "unknown_dispute"
    r = _post(client, app, {"id": "evt_1", "type": "charge.dispute.closed", "data": {}})
    assert r.status_code == 400
    rt, dispute = _open(app, intent_id)
    # A signed event claiming "lost" (and a huge amount) for an open dispute: the provider's
    # record says needs_response, and that is what the shop keeps.
    r = _post(client, app, _event(dispute.id, event_id="evt_claim"))
    assert r.status_code == 200
    shown = admin.get(f"/api/v1/admin/disputes/{dispute.id}").json()
    assert shown["status"] == "needs_response" and shown["amount_minor"] == order["total_minor"]
    r = _post(client, app, _event(dispute.id, event_id="evt_claim"))
    assert r.json() == {"received": True, "duplicate": True}
    with app.state.components.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Dispute)) == 1
