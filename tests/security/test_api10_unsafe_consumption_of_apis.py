"""API10:2023 Unsafe Consumption of APIs: provider webhooks are authenticated and idempotent.

``tests/checkout/test_checkout_api.py::test_webhook_signature_replay_and_late_success_never_revives``
covers a bad MAC, a 301 s old timestamp, a replay and a late success. This adds the missing,
malformed, future-dated, wrong-secret and tampered-body cases, and a hostile but signed body.
"""

from __future__ import annotations

import orjson

from serving.core.clock import utcnow
from serving.services.payments.webhooks import sign

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
    secret = app.state.settings.payment_webhook_secret
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

    with app.state.db.session() as s:
        assert s.query(WebhookReceipt).count() == 0  # nothing refused was recorded


def test_api10_signed_but_hostile_bodies_are_validated(app, client):
    secret = app.state.settings.payment_webhook_secret
    now = int(utcnow().timestamp())
    for body in (b"not json", b"[]", b'{"id": 1}', orjson.dumps({"id": "e", "type": "x"})):
        r = _post(client, body, sign(secret, body, now))
        assert r.status_code == 422, body
    unknown = _event(order_id="ord_does_not_exist", event_id="evt_sec_unknown")
    r = _post(client, unknown, sign(secret, unknown, now))
    assert r.status_code == 200 and r.json()["ignored"] == "unknown order"
    again = _post(client, unknown, sign(secret, unknown, now + 1))
    assert again.json() == {"received": True, "duplicate": True}
