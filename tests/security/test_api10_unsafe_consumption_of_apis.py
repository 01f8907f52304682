"""API10:2023 Unsafe Consumption of APIs: provider webhooks are authenticated and idempotent.

``tests/checkout/test_checkout_api.py::test_webhook_signature_replay_and_late_success_never_revives``
covers a bad MAC, a 301 s old timestamp, a replay and a late success. This adds the missing,
malformed, future-dated, wrong-secret and tampered-body cases, and a hostile but signed body.
"""

from __future__ import annotations

import orjson

from serving.core.clock import utcnow
from serving.services.checkout.payments.webhooks import sign

URL = "/api/v1/payments/webhook"


def _event(order_id: str = "ord_missing", event_id: str = "evt_sec_1") -> bytes:
    return orjson.dumps(
        {
            "id": event_id,
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_x", "metadata": {"order_id": order_id}}},
        }
    )


def _post(client, body: bytes, signature: str | None):
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["Storeloop-Signature"] = signature
    return client.post(URL, content=body, headers=headers)


def test_api10_unsigned_or_badly_signed_webhooks_are_refused(app, client):
    secret = app.state.components.settings.payment_webhook_secret
    body = _event()
    now = int(utcnow().timestamp())
    cases = {
        "missing": None,
        "empty": "",
        "malformed": "v1=abc",
        "garbage time": "t=soon,v1=00",
        "wrong secret": sign("whsec_attacker", body, now),
        "future": sign(secret, body, now + 3600),
        "old": sign(secret, body, now - 3600),
        "tampered body": sign(secret, body.replace(b"evt_sec_1", b"evt_sec_2"), now),
    }
    for name, signature in cases.items():
        r = _post(client, body, signature)
        assert r.status_code == 400, (name, r.status_code)
        assert r.headers["content-type"] == "application/problem+json"
    from serving.db.tables.payments import WebhookReceipt

    with app.state.components.db.session() as s:
        assert s.query(WebhookReceipt).count() == 0  # nothing refused was recorded


def test_api10_signed_but_malformed_bodies_are_400_after_the_signature(app, client):
    """Regression: a signed body missing ``amount_refunded``, with an amount of ``"lots"`` or
    an ``order_id`` that is an object answered 500. The signature is checked first (a bad one
    is refused as such), then the shape: 400 problem+json, nothing recorded."""
    secret = app.state.components.settings.payment_webhook_secret
    now = int(utcnow().timestamp())

    def refund(obj: dict) -> bytes:
        return orjson.dumps({"id": "evt_bad", "type": "charge.refunded", "data": {"object": obj}})

    bodies = {
        "not json": b"not json",
        "array": b"[]",
        "id not a string": b'{"id": 1}',
        "no data": orjson.dumps({"id": "e", "type": "x"}),
        "missing amount_refunded": refund({"id": "pi_x", "metadata": {"order_id": "ord_1"}}),
        "amount lots": refund({"id": "pi_x", "amount_refunded": "lots"}),
        "amount as text": refund({"id": "pi_x", "amount_refunded": "2"}),
        "amount as bool": refund({"id": "pi_x", "amount_refunded": True}),
        "order id an object": refund(
            {"id": "pi_x", "amount_refunded": 1, "metadata": {"order_id": {"$ne": ""}}}
        ),
        "event id too long": orjson.dumps(
            {"id": "e" * 41, "type": "payment_intent.succeeded", "data": {"object": {"id": "p"}}}
        ),
    }
    for name, body in bodies.items():
        r = _post(client, body, sign(secret, body, now))
        assert r.status_code == 400, (name, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert "provider event" in r.json()["detail"] or "JSON" in r.json()["detail"], name
        forged = _post(client, body, sign("whsec_attacker", body, now))
        assert forged.json()["detail"] == "Webhook signature does not match", name
    from serving.db.tables.payments import WebhookReceipt

    with app.state.components.db.session() as s:
        assert s.query(WebhookReceipt).count() == 0


def test_api10_an_intent_the_provider_does_not_know_changes_nothing(app, client):
    """A signed event is only a hint: its intent is read back from the provider, and one the
    provider does not know is refused (422) without a receipt or any state change."""
    secret = app.state.components.settings.payment_webhook_secret
    now = int(utcnow().timestamp())
    unknown = _event(order_id="ord_does_not_exist", event_id="evt_sec_unknown")
    r = _post(client, unknown, sign(secret, unknown, now))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "unknown_intent"
    from serving.db.tables.payments import WebhookReceipt

    with app.state.components.db.session() as s:
        assert s.query(WebhookReceipt).count() == 0
    other = orjson.dumps(
        {"id": "evt_other", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
    )
    r = _post(client, other, sign(secret, other, now))
    assert r.status_code == 200 and r.json()["ignored"] == "event type"
