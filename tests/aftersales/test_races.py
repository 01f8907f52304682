"""Concurrent requests on the new write paths, on real database sessions in real threads:
returns never add up to more than was ordered, payouts never pay twice, the marketplace pass
run twice at once books each sale once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from serving.core.errors import ProblemError
from serving.db.tables.aftersales import ReturnLine
from serving.db.tables.marketplace import SellerLedgerEntry
from serving.services.aftersales import returns
from serving.services.marketplace import fulfilment, ledger
from tests.aftersales.conftest import deliver, seller_product, settle, user_id
from tests.checkout.conftest import order_body, place, tokenise


def _race(fn, n: int) -> list:
    barrier = threading.Barrier(n)

    def run(i: int):
        barrier.wait()
        try:
            return fn(i)
        except ProblemError as exc:
            return exc.status

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_parallel_return_requests_never_exceed_the_order(
    app, client, admin, customer, make_product
):
    pid = make_product(10)
    order = place(customer, order_body(tokenise(client), [(pid, 3)])).json()
    deliver(admin, order["id"])
    uid = user_id(customer)

    def ask(_: int):
        with app.state.components.db.session(write=True) as s:
            return returns.request_return(
                s, user_id=uid, order_id=order["id"], lines=[(pid, 1)], reason="race"
            )["status"]

    outcomes = _race(ask, 8)
    assert sorted(map(str, outcomes)) == ["409"] * 5 + ["requested"] * 3
    with app.state.components.db.session() as s:
        assert s.scalar(select(func.sum(ReturnLine.quantity))) == 3


def test_parallel_payouts_pay_once_and_parallel_passes_book_once(
    app, client, admin, customer, make_seller, category
):
    alice = make_seller(1000)
    pa = seller_product(alice, category, price=1000)
    for _ in range(3):
        place(customer, order_body(tokenise(client), [(pa, 1)]))

    def pass_(_: int):
        with app.state.components.db.session(write=True) as s:
            return fulfilment.settle_orders(s)["parcels_opened"]

    _race(pass_, 4)
    with app.state.components.db.session() as s:
        sales = s.scalar(
            select(func.count())
            .select_from(SellerLedgerEntry)
            .where(SellerLedgerEntry.kind == "sale")
        )
    assert sales == 3
    settle(admin)

    def pay(_: int):
        with app.state.components.db.session(write=True) as s:
            return ledger.pay_out(s, alice.seller_id)["paid_minor"]

    outcomes = _race(pay, 4)
    assert sorted(map(str, outcomes)) == ["2700", "409", "409", "409"]
    assert alice.get("/api/v1/seller/ledger").json()["owed_minor"] == 0


def test_parallel_subscribes_make_one_membership_and_one_charge(app, client, customer):
    from serving.db.tables.membership import MembershipCharge
    from serving.db.tables.payments import SimPaymentIntent
    from serving.services.aftersales.runtime import aftersales_runtime
    from serving.services.membership import subscriptions

    uid = user_id(customer)
    pm = tokenise(client)
    rt = aftersales_runtime(app)

    def join(_: int):
        subscriptions.subscribe(rt.db, rt.provider, user_id=uid, payment_method=pm)
        return "joined"

    outcomes = _race(join, 6)
    assert sorted(map(str, outcomes)) == ["409"] * 5 + ["joined"]
    with app.state.components.db.session() as s:
        assert s.scalar(select(func.count()).select_from(MembershipCharge)) == 1
        assert s.scalar(select(func.count()).select_from(SimPaymentIntent)) == 1
    assert customer.get("/api/v1/membership").json()["status"] == "active"
