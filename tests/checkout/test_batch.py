"""The batched checkout (group commit): same answers and books as the per-order saga.

Orders are queued before the batch thread starts, so they form one known batch; each test then
checks what a shopper sees (status, stored answer, replay) and the books (stock, movements,
intents) exactly as the per-order tests do.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from devtools.waits import scaled
from serving.core.errors import NotFound
from serving.db.tables import Inventory, StockMovement
from serving.db.tables.idempotency import IdempotencyKey
from serving.db.tables.orders import Order
from serving.db.tables.payments import SimPaymentIntent
from serving.services.checkout import order_states as st
from serving.services.checkout import saga, webhooks
from serving.services.checkout.batch import CheckoutBatcher
from serving.services.checkout.runtime import NoEvents
from serving.services.orders import order_dict

from .conftest import order_body, tokenise


def run_batch(
    rt, requests: list[tuple[str, dict]], user_id: int, *, wrap=None, verify_user: bool = False
) -> tuple:
    """Queue ``requests`` (key, body), then start the batcher: they run as one batch.

    Returns the outcomes (or raised problems) in request order and the batcher."""
    batcher = CheckoutBatcher(rt, start=False)
    if wrap is not None:
        wrap(batcher)

    async def main():
        tasks = [
            asyncio.ensure_future(
                batcher.place(
                    user_id=user_id,
                    key=key,
                    body=body,
                    events=NoEvents(),
                    verify_user=verify_user,
                )
            )
            for key, body in requests
        ]
        for _ in range(3):
            await asyncio.sleep(0)  # every task has queued its order
        batcher.start()
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        return asyncio.run(main()), batcher
    finally:
        batcher.close()


def _stock(app, pid: int) -> tuple[int, int, int, int]:
    with app.state.components.db.session() as s:
        inv = s.execute(select(Inventory).where(Inventory.product_id == pid)).scalar_one()
        moved = s.execute(
            select(
                func.coalesce(func.sum(StockMovement.delta_on_hand), 0),
                func.coalesce(func.sum(StockMovement.delta_reserved), 0),
            ).where(StockMovement.product_id == pid)
        ).one()
        return inv.on_hand, inv.reserved, int(moved[0]), int(moved[1])


def test_one_batch_sells_exactly_the_stock_and_answers_like_the_saga(
    app, client, rt, user_id, make_product
):
    scarce, plenty = make_product(5), make_product(100)
    pm = tokenise(client)
    requests = [
        (uuid.uuid4().hex, order_body(pm, [(scarce if i % 5 < 3 else plenty, 1 + i % 2)]))
        for i in range(20)
    ]
    outcomes, batcher = run_batch(rt, requests, user_id)

    assert batcher.batches == 1  # one group commit for every accepted order
    codes = [o.status for o in outcomes]
    scarce_codes = [
        c
        for c, (_, b) in zip(codes, requests, strict=True)
        if b["items"][0]["product_id"] == scarce
    ]
    plenty_codes = [
        c
        for c, (_, b) in zip(codes, requests, strict=True)
        if b["items"][0]["product_id"] == plenty
    ]
    assert plenty_codes == [201] * len(plenty_codes)
    # First come, first served in arrival order: quantities 1,2,1,… until 5 units are gone.
    sold = 0
    for code, (_, body) in zip(codes, requests, strict=True):
        line = body["items"][0]
        if line["product_id"] != scarce:
            continue
        fits = sold + line["quantity"] <= 5
        assert code == (201 if fits else 409)
        sold += line["quantity"] if fits else 0
    assert 409 in scarce_codes
    assert batcher.batched_orders == codes.count(201)

    on_hand, reserved, moved_on_hand, moved_reserved = _stock(app, scarce)
    assert (on_hand, reserved) == (5, sold) == (moved_on_hand, moved_reserved)
    with app.state.components.db.session() as s:
        for outcome, (key, _) in zip(outcomes, requests, strict=True):
            stored = s.execute(
                select(IdempotencyKey).where(
                    IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
                )
            ).scalar_one()
            assert (stored.status, stored.response_status) == ("done", outcome.status)
            if outcome.status == 201:
                # The body built from memory is the order as GET shows it.
                assert outcome.body == order_dict(s, outcome.body["id"])
                assert outcome.body["status"] == st.FULFILLED
            else:
                assert outcome.body["type"].endswith("/out-of-stock")
        intents = s.scalar(select(func.count()).select_from(SimPaymentIntent))
        assert intents == codes.count(201)


def test_a_key_twice_in_one_batch_makes_one_order(app, client, rt, user_id, make_product):
    pid = make_product(10)
    body = order_body(tokenise(client), [(pid, 1)])
    (first, second), _ = run_batch(rt, [("same-key", body), ("same-key", body)], user_id)
    assert first.status == second.status == 201
    assert first.body["id"] == second.body["id"]
    assert second.replayed and not first.replayed
    with app.state.components.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 1
        assert s.scalar(select(func.count()).select_from(SimPaymentIntent)) == 1


def test_a_shoppers_error_in_a_batch_stores_nothing_and_spares_the_rest(
    app, client, rt, user_id, make_product
):
    pid = make_product(10)
    pm = tokenise(client)
    good = order_body(pm, [(pid, 1)])
    bad = order_body(pm, [(pid + 10_000, 1)])
    (ok, missing), _ = run_batch(rt, [("k-good", good), ("k-bad", bad)], user_id)
    assert ok.status == 201
    assert isinstance(missing, NotFound)
    with app.state.components.db.session() as s:
        keys = set(s.scalars(select(IdempotencyKey.key)))
    assert keys == {"k-good"}  # the same key may be retried with a corrected body


def test_an_order_cancelled_between_charge_and_fulfilment_is_refunded(
    app, client, rt, user_id, make_product
):
    pid = make_product(10)
    pm = tokenise(client)
    requests = [(uuid.uuid4().hex, order_body(pm, [(pid, 1)])) for _ in range(3)]

    def cancel_first_after_charge(batcher):
        charge_many = rt.provider.charge_many

        def charge_then_cancel(reqs):
            intents = charge_many(reqs)
            order_id = reqs[0].metadata["order_id"]
            saga.cancel_order(rt, order_id=order_id, user_id=None, reason="race", events=NoEvents())
            return intents

        rt.provider.charge_many = charge_then_cancel

    try:
        outcomes, _ = run_batch(rt, requests, user_id, wrap=cancel_first_after_charge)
    finally:
        del rt.provider.charge_many
    assert [o.status for o in outcomes] == [409, 201, 201]
    assert outcomes[0].body["type"].endswith("/order-cancelled")
    with app.state.components.db.session() as s:
        status = s.scalar(select(Order.status).where(Order.id == outcomes[0].body["order_id"]))
        refunded = s.scalars(select(SimPaymentIntent.amount_refunded)).all()
    assert status in (st.CANCELLED, st.REFUNDED)
    assert sorted(refunded) == [0, 0, outcomes[1].body["total_minor"]]  # its charge went back
    on_hand, reserved, moved_on_hand, moved_reserved = _stock(app, pid)
    assert (reserved, on_hand) == (2, 10) == (moved_reserved, moved_on_hand)


def test_a_provider_outage_mid_batch_leaves_no_order_holding_stock(
    app, client, rt, user_id, make_product
):
    pid = make_product(10)
    pm = tokenise(client)
    requests = [(uuid.uuid4().hex, order_body(pm, [(pid, 2)])) for _ in range(4)]
    simulated = rt.provider.inner

    def outage_after_reserve(batcher):
        charge_many = rt.provider.charge_many

        def down_then_charge(reqs):
            simulated.down = True
            return charge_many(reqs)

        rt.provider.charge_many = down_then_charge

    try:
        outcomes, _ = run_batch(rt, requests, user_id, wrap=outage_after_reserve)
    finally:
        simulated.down = False
        del rt.provider.charge_many
    assert all(getattr(o, "status", None) in (402, 503) for o in outcomes), outcomes
    with app.state.components.db.session() as s:
        statuses = set(s.scalars(select(Order.status)))
        assert s.scalar(select(func.count()).select_from(SimPaymentIntent)) == 0
    assert statuses <= {st.PAYMENT_FAILED}
    on_hand, reserved, moved_on_hand, moved_reserved = _stock(app, pid)
    assert (on_hand, reserved) == (10, 0) == (moved_on_hand, moved_reserved)


def _succeeded(event_id: str, intent, order_id: str) -> dict:
    return {
        "id": event_id,
        "type": "payment_intent.succeeded",
        "created": 0,
        "data": {
            "object": {
                "id": intent.id,
                "status": "succeeded",
                "amount": intent.amount_minor,
                "amount_refunded": 0,
                "metadata": {"order_id": order_id},
            }
        },
    }


def test_a_webhook_batch_confirms_settled_orders_and_still_refunds_a_cancelled_one(
    app, client, customer, rt, make_product
):
    """In-process deliveries come in batches: the confirmations of settled orders are recorded
    together; a late success for a cancelled order in the same batch is still refunded."""
    import orjson

    from serving.core.clock import utcnow
    from serving.db.tables.payments import WebhookReceipt
    from serving.services.checkout.payments.webhooks import sign

    pid = make_product(10)
    pm = tokenise(client)
    orders = [
        customer.post(
            "/api/v1/orders", json=order_body(pm, [(pid, 1)]), headers={"Idempotency-Key": f"w{i}"}
        ).json()
        for i in range(3)
    ]
    customer.post(f"/api/v1/orders/{orders[2]['id']}/cancel")
    with app.state.components.db.session() as s:
        intents = {i.meta["order_id"]: i for i in s.execute(select(SimPaymentIntent)).scalars()}
        before = {o.id: o.updated_at for o in s.execute(select(Order)).scalars()}
    events = [_succeeded(f"evt_b{i}", intents[o["id"]], o["id"]) for i, o in enumerate(orders)]
    events.append(events[0])  # a replay inside the batch
    now = int(utcnow().timestamp())
    secret = rt.settings.payment_webhook_secret
    deliveries = [(body, sign(secret, body, now)) for body in map(orjson.dumps, events)]
    webhooks.receive_webhooks(rt, deliveries)

    with app.state.components.db.session() as s:
        receipts = set(s.scalars(select(WebhookReceipt.event_id)))
        after = {o.id: o for o in s.execute(select(Order)).scalars()}
    assert {"evt_b0", "evt_b1", "evt_b2"} <= receipts
    for settled in orders[:2]:  # confirmations change nothing
        assert after[settled["id"]].status == st.FULFILLED
        assert after[settled["id"]].updated_at == before[settled["id"]]
    cancelled = customer.get(f"/api/v1/orders/{orders[2]['id']}").json()
    assert cancelled["status"] == st.REFUNDED
    assert cancelled["payment"]["refunded_minor"] == orders[2]["total_minor"]


def test_a_deactivated_caller_is_refused_by_the_batch_and_nothing_is_stored(
    app, client, customer, rt, user_id, make_product
):
    """The checkout route leaves the user check to the batch when no fresh cached row vouches
    for the caller: T1 reads the batch's users once and answers 401 for an inactive one."""
    from sqlalchemy import update

    from serving.core.errors import Unauthorized
    from serving.db.tables import User

    pid = make_product(10)
    body = order_body(tokenise(client), [(pid, 1)])
    (ok,), _ = run_batch(rt, [("k-active", body)], user_id, verify_user=True)
    assert ok.status == 201
    with app.state.components.db.transaction() as s:
        s.execute(update(User).where(User.id == user_id).values(is_active=False))
    (refused,), _ = run_batch(rt, [("k-inactive", body)], user_id, verify_user=True)
    assert isinstance(refused, Unauthorized)
    r = customer.post("/api/v1/orders", json=body, headers={"Idempotency-Key": "k-http"})
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    with app.state.components.db.session() as s:
        assert set(s.scalars(select(IdempotencyKey.key))) == {"k-active"}
        assert s.scalar(select(func.count()).select_from(Order)) == 1


def test_batched_orders_log_placed_and_paid_events_with_their_request_ids(
    app, client, customer, make_product
):
    """The batch hands all its events to the log at once; each still carries its own order,
    user and request id."""
    import time

    import orjson

    pid = make_product(10)
    pm = tokenise(client)
    ids, request_ids = [], []
    for i in range(3):
        r = customer.post(
            "/api/v1/orders", json=order_body(pm, [(pid, 1)]), headers={"Idempotency-Key": f"e{i}"}
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        request_ids.append(r.headers["x-request-id"])
    log = app.state.components.event_log
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline:
        records = [
            orjson.loads(line)
            for path in log.events_dir.iterdir()
            for line in path.read_bytes().splitlines()
            if line.strip()
        ]
        paid = {r["order_id"]: r for r in records if r["type"] == "order_paid"}
        if len(paid) == 3:
            break
        time.sleep(0.05)
    placed = {r["order_id"]: r for r in records if r["type"] == "order_placed"}
    assert set(placed) == set(paid) == set(ids)
    for order_id, request_id in zip(ids, request_ids, strict=True):
        assert placed[order_id]["request_id"] == paid[order_id]["request_id"] == request_id
        assert paid[order_id]["props"]["total_minor"] > 0


def test_two_batches_in_flight_sell_exactly_the_stock(app, client, rt, user_id, make_product):
    """``checkout_batch_threads=2``: batches overlap; stock rows are taken in turn."""
    pid = make_product(7)
    pm = tokenise(client)
    requests = [(uuid.uuid4().hex, order_body(pm, [(pid, 1)])) for _ in range(20)]
    batcher = CheckoutBatcher(rt, start=False, threads=2, max_batch=4)

    async def main():
        tasks = [
            asyncio.ensure_future(batcher.place(user_id=user_id, key=k, body=b, events=NoEvents()))
            for k, b in requests
        ]
        for _ in range(3):
            await asyncio.sleep(0)
        batcher.start()
        return await asyncio.gather(*tasks)

    try:
        outcomes = asyncio.run(main())
    finally:
        batcher.close()
    assert sorted(o.status for o in outcomes) == [201] * 7 + [409] * 13
    on_hand, reserved, moved_on_hand, moved_reserved = _stock(app, pid)
    assert (on_hand, reserved) == (7, 7) == (moved_on_hand, moved_reserved)


def test_cart_and_item_orders_in_one_batch_share_the_stock_they_read(
    app, client, rt, user_id, customer, make_product
):
    """A batch with a cart order and orders naming items of the same scarce product: the
    stock of the cart's products is read (locked, on PostgreSQL) with the batch's other
    reads, the first orders in arrival order get it, and the cart order empties the cart."""
    scarce, other = make_product(3), make_product(10)
    pm = tokenise(client)
    assert (
        customer.post("/api/v1/cart/items", json={"product_id": scarce, "quantity": 2}).status_code
        < 300
    )
    assert (
        customer.post("/api/v1/cart/items", json={"product_id": other, "quantity": 1}).status_code
        < 300
    )
    requests = [
        (uuid.uuid4().hex, order_body(pm)),  # the cart: 2 of scarce, 1 of other
        (uuid.uuid4().hex, order_body(pm, [(scarce, 1)])),
        (uuid.uuid4().hex, order_body(pm, [(scarce, 1)])),  # nothing left
    ]
    outcomes, batcher = run_batch(rt, requests, user_id)

    assert [o.status for o in outcomes] == [201, 201, 409]
    assert batcher.batches == 1
    assert {line["product_id"]: line["quantity"] for line in outcomes[0].body["items"]} == {
        scarce: 2,
        other: 1,
    }
    assert _stock(app, scarce)[:2] == (3, 3) and _stock(app, other)[:2] == (10, 1)
    assert customer.get("/api/v1/cart").json()["items"] == []
