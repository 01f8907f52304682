"""What the shop believes about a payment, and from whom (docs/security.md, "Payment trust").

A signed webhook is a hint: the intent it names is read back from the provider, and only the
provider's status, amounts and order id count. These tests forge correctly signed events (as
anyone holding the secret could, e.g. with the old public default) and check that nothing the
provider did not say changes an order.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid

import orjson
import pytest
from sqlalchemy import func, select

from devtools.waits import scaled
from serving.core.clock import utcnow
from serving.db.tables import Inventory
from serving.db.tables.notifications import OutboxMessage
from serving.db.tables.orders import Order
from serving.db.tables.payments import Payment, SimPaymentIntent, WebhookReceipt
from serving.db.tables.shipping import Shipment
from serving.services.checkout import order_states as st
from serving.services.checkout import saga, service, steps
from serving.services.checkout.payments.webhooks import sign
from serving.services.checkout.runtime import NoEvents, SimulatedCrash

from .conftest import order_body, place, tokenise

URL = "/api/v1/payments/webhook"


@pytest.fixture
def rt(app, client):
    return service.runtime(app)


def _forge(client, rt, *, event_type: str, intent_id: str, order_id: str, **fields):
    """A correctly signed event that claims whatever it likes."""
    body = orjson.dumps(
        {
            "id": "evt_" + uuid.uuid4().hex[:20],
            "type": event_type,
            "data": {
                "object": {
                    "id": intent_id,
                    "object": "payment_intent",
                    "metadata": {"order_id": order_id},
                    **fields,
                }
            },
        }
    )
    signature = sign(rt.settings.payment_webhook_secret, body, int(utcnow().timestamp()))
    return client.post(URL, content=body, headers={"Storeloop-Signature": signature})


def _books(app, order_id: str) -> dict:
    with app.state.components.db.session() as s:
        return {
            "status": s.scalar(select(Order.status).where(Order.id == order_id)),
            "payment": s.execute(
                select(Payment.status, Payment.refunded_minor).where(Payment.order_id == order_id)
            ).one(),
            "mails": sorted(
                s.scalars(select(OutboxMessage.kind).where(OutboxMessage.order_id == order_id))
            ),
            "shipment": s.scalar(select(Shipment.status).where(Shipment.order_id == order_id)),
        }


def _reserved(app, product_id: int) -> int:
    with app.state.components.db.session() as s:
        return s.scalar(select(Inventory.reserved).where(Inventory.product_id == product_id))


def test_forged_success_racing_a_decline_never_ships_unpaid_goods(
    app, client, customer, rt, make_product
):
    """Regression (issue 18): while a declined card's charge was in flight, a signed
    ``payment_intent.succeeded`` for the ``reserved`` order made it ``fulfilled``; the decline
    then lost the state race and was swallowed: goods shipped, confirmation mailed, no money.

    The provider call is held open (test hook) and forged successes are posted the whole time,
    first naming made-up intents, then the real (declined) one with a "succeeded" status."""
    pid = make_product(5)
    pm = tokenise(client, "generic_decline")
    rt.hooks["provider_delay_ms"] = "600"
    answers: list = []
    try:
        worker = threading.Thread(
            target=lambda: answers.append(place(customer, order_body(pm, [(pid, 1)])))
        )
        worker.start()
        deadline = time.monotonic() + scaled(30)
        order_id = None
        while order_id is None and time.monotonic() < deadline:
            with app.state.components.db.session() as s:
                order_id = s.scalar(select(Order.id).where(Order.status == st.RESERVED))
        assert order_id is not None, "the order was never reserved"
        forged = []
        while worker.is_alive() or len(forged) < 3:
            with app.state.components.db.session() as s:
                real = s.scalar(select(SimPaymentIntent.id))
            forged.append(
                _forge(
                    client,
                    rt,
                    event_type="payment_intent.succeeded",
                    intent_id=real or "pi_" + uuid.uuid4().hex[:24],
                    order_id=order_id,
                    status="succeeded",
                    amount=2500 + 499,
                    amount_refunded=0,
                ).status_code
            )
            if not worker.is_alive():
                worker.join()
        worker.join()
    finally:
        rt.hooks.pop("provider_delay_ms", None)
    (answer,) = answers
    assert answer.status_code == 402, answer.text
    assert set(forged) <= {200, 422}
    books = _books(app, order_id)
    assert books["status"] == st.PAYMENT_FAILED
    assert books["payment"].status == "failed"
    assert "order_confirmed" not in books["mails"]
    assert books["shipment"] is None
    assert _reserved(app, pid) == 0


def test_a_decline_that_loses_the_state_race_cancels_the_order(
    app, client, customer, rt, make_product
):
    """Whatever moved the order on (a path that trusted the wrong party), once the provider's
    final word is a decline the order is cancelled: stock back, parcel stopped, shopper told.
    Before, ``_record_result`` swallowed the IllegalTransition and the order stayed fulfilled."""
    pid = make_product(3)
    rt.hooks["crash_after_reserve"] = ""
    try:
        with contextlib.suppress(SimulatedCrash):
            place(customer, order_body(tokenise(client, "generic_decline"), [(pid, 2)]))
    finally:
        rt.hooks.pop("crash_after_reserve")
    with app.state.components.db.session() as s:
        order_id = s.scalar(select(Order.id))
    with app.state.components.db.session(
        write=True
    ) as s:  # the wrong winner: fulfilled, label, mail
        st.transition(s, order_id=order_id, to=st.PAID, only_from={st.RESERVED}, reason="forged")
        steps.fulfil(s, order_id=order_id)
        s.commit()
    assert _books(app, order_id)["status"] == st.FULFILLED

    outcome = saga.pay_and_finish(rt, order_id, user_id=0, key=None, events=NoEvents())
    assert outcome.status == 402
    books = _books(app, order_id)
    assert books["status"] == st.CANCELLED
    assert books["payment"].status == "failed"
    assert books["shipment"] == "cancelled"
    assert books["mails"] == ["order_cancelled", "order_confirmed"]
    assert _reserved(app, pid) == 0


def test_an_intent_of_another_order_changes_nothing(app, client, customer, rt, make_product):
    """A real, succeeded intent of order A cannot pay for order B: the provider says whose it
    is, and an event naming another order is refused (422) with nothing changed."""
    pid = make_product(5)
    paid = place(customer, order_body(tokenise(client), [(pid, 1)])).json()
    rt.hooks["crash_after_reserve"] = ""
    try:
        with contextlib.suppress(SimulatedCrash):
            place(customer, order_body(tokenise(client), [(pid, 1)]))
    finally:
        rt.hooks.pop("crash_after_reserve")
    with app.state.components.db.session() as s:
        unpaid = s.scalar(select(Order.id).where(Order.status == st.RESERVED))
        intent = s.scalar(select(SimPaymentIntent.id))
    r = _forge(
        client,
        rt,
        event_type="payment_intent.succeeded",
        intent_id=intent,
        order_id=unpaid,
        status="succeeded",
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "order_mismatch"
    assert _books(app, unpaid)["status"] == st.RESERVED
    assert _books(app, paid["id"])["status"] == st.FULFILLED


def test_refund_amounts_come_from_the_provider_capped_by_the_charge(
    app, client, customer, rt, make_product
):
    """Regression (issue 18): a signed ``charge.refunded`` with ``amount_refunded:
    2147483653`` set the order's ``refunded_minor`` to that while the provider had refunded 0.
    The provider's figure is recorded, never more than was charged."""
    pid = make_product(5)
    order = place(customer, order_body(tokenise(client), [(pid, 1)])).json()
    with app.state.components.db.session() as s:
        intent = s.scalar(select(SimPaymentIntent.id))
    r = _forge(
        client,
        rt,
        event_type="charge.refunded",
        intent_id=intent,
        order_id=order["id"],
        amount_refunded=2147483653,
    )
    assert r.status_code == 200, r.text
    after = customer.get(f"/api/v1/orders/{order['id']}").json()
    assert after["status"] == st.FULFILLED
    assert after["payment"]["refunded_minor"] == 0

    customer.post(f"/api/v1/orders/{order['id']}/cancel")  # a real, full refund
    r = _forge(
        client,
        rt,
        event_type="charge.refunded",
        intent_id=intent,
        order_id=order["id"],
        amount_refunded=2147483653,
    )
    assert r.status_code == 200
    after = customer.get(f"/api/v1/orders/{order['id']}").json()
    assert after["payment"]["refunded_minor"] == order["total_minor"]


def test_real_events_still_settle_orders_through_the_per_install_secret(
    app, client, customer, rt, make_product
):
    """The simulated provider signs its deliveries with the same generated secret the
    endpoint checks: a real late success for a cancelled order is still refunded."""
    secret = rt.settings.payment_webhook_secret
    assert secret.startswith("whsec_") and len(secret) > 40
    assert (rt.settings.data_dir / "payment_webhook_secret").read_text().strip() == secret
    assert rt.dispatcher._secret == secret
    pid = make_product(5)
    order = place(customer, order_body(tokenise(client), [(pid, 1)])).json()
    rt.dispatcher.drain()
    with app.state.components.db.session() as s:
        assert s.scalar(select(func.count()).select_from(WebhookReceipt)) == 1
    assert customer.get(f"/api/v1/orders/{order['id']}").json()["status"] == st.FULFILLED
