"""Multi-seller orders racing on a real server: no oversell of any seller's stock, the books
balance, and every accepted order becomes exactly one parcel and one sale per seller; with a
coupon on every order, its limit holds too, and a SIGKILL mid-checkout leaves after recovery
no order stuck, no stock or coupon use held by a dead order, and no charge without an order."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from devtools.shop_db import Shop
from devtools.waits import poll
from serving.core.clock import utcnow
from serving.db.tables import Inventory, Promotion, PromotionRedemption, User
from serving.db.tables.marketplace import SellerLedgerEntry, SellerProduct, SellerShipment
from serving.db.tables.orders import Order
from serving.db.tables.payments import SimPaymentIntent
from serving.services.checkout import order_states as st
from serving.services.marketplace import fulfilment, sellers
from serving.services.pricing import promotions
from tests.checkout.server import Server
from tests.checkout.test_concurrency import _assert_books_balance, _checkout, _race, _tokenise

from ..conftest import truncate_all


@pytest.fixture
def shop(db_url):
    secret = secrets.token_urlsafe(48)
    shop = Shop(db_url, secret)
    shop.secret = secret
    yield shop
    shop.close()
    truncate_all(db_url)


def _seller_product(shop: Shop, stock: int, bps: int) -> tuple[int, int]:
    """A product owned by a new seller; returns (product id, seller id)."""
    pid = shop.product(stock, price=1999)
    with shop.db.session(write=True) as s:
        user_id = s.scalar(select(User.id).where(User.role == "customer").order_by(User.id.desc()))
        seller = sellers.register(s, user_id=user_id, display_name="Racer", commission_bps=bps)
        s.add(SellerProduct(product_id=pid, seller_id=seller["id"], created_at=utcnow()))
        s.commit()
    return pid, seller["id"]


def test_two_sellers_last_units_race_without_oversell_and_book_once(shop, db_url, tmp_path):
    tokens = shop.customers(40)
    shop.customers(1)
    a, seller_a = _seller_product(shop, 5, 1000)
    shop.customers(1)
    b, seller_b = _seller_product(shop, 3, 1500)
    server = Server(db_url, tmp_path / "data", shop.secret)
    server.start()
    try:
        pm = _tokenise(server.url)
        responses = _race(40, lambda i: _checkout(server.url, tokens[i], [(a, 1), (b, 1)], pm))
    finally:
        server.stop()
    codes = [r.status_code for r in responses]
    assert set(codes) <= {201, 409}, codes
    accepted = [r.json()["id"] for r in responses if r.status_code == 201]
    assert 1 <= len(accepted) <= 3  # the 3 units of b are the limit
    _assert_books_balance(shop, [a, b], {a: 5, b: 3})
    with shop.db.session(write=True) as s:
        fulfilment.settle_orders(s)
    with shop.db.session(write=True) as s:
        assert fulfilment.settle_orders(s)["parcels_opened"] == 0
    with shop.db.session() as s:
        parcels = s.execute(
            select(SellerShipment.order_id, func.count()).group_by(SellerShipment.order_id)
        ).all()
        assert sorted(parcels) == sorted((o, 2) for o in accepted)
        for seller_id, bps in ((seller_a, 1000), (seller_b, 1500)):
            sale = s.scalar(
                select(func.sum(SellerLedgerEntry.amount_minor)).where(
                    SellerLedgerEntry.seller_id == seller_id, SellerLedgerEntry.kind == "sale"
                )
            )
            commission = s.scalar(
                select(func.sum(SellerLedgerEntry.amount_minor)).where(
                    SellerLedgerEntry.seller_id == seller_id,
                    SellerLedgerEntry.kind == "commission",
                )
            )
            assert sale == 1999 * len(accepted)
            assert commission == -len(accepted) * fulfilment.commission_of(1999, bps)


def _coupon(shop: Shop, code: str, max_uses: int) -> int:
    with shop.db.session(write=True) as s:
        promo = promotions.create_promotion(
            s,
            {
                "code": code,
                "name": code,
                "kind": "percent",
                "percent_bp": 1000,
                "currency": "EUR",
                "max_uses": max_uses,
            },
            datetime.now(UTC),
        )
        s.commit()
    return promo["id"]


def _assert_sellers_books(shop: Shop, seller_ids: list[int]) -> None:
    """Every charged order has one parcel and one sale per seller; no other order has an
    open sale (a cancelled one's sale, if booked, is refunded)."""
    with shop.db.session() as s:
        charged = set(s.scalars(select(Order.id).where(Order.status.in_(st.CHARGED))))
        for seller_id in seller_ids:
            net = dict(
                s.execute(
                    select(SellerLedgerEntry.order_id, func.sum(SellerLedgerEntry.amount_minor))
                    .where(
                        SellerLedgerEntry.seller_id == seller_id,
                        SellerLedgerEntry.kind.in_(("sale", "refund")),
                    )
                    .group_by(SellerLedgerEntry.order_id)
                ).all()
            )
            assert {o for o, amount in net.items() if amount} == charged
            parcels = set(
                s.scalars(
                    select(SellerShipment.order_id).where(
                        SellerShipment.seller_id == seller_id,
                        SellerShipment.status != "cancelled",
                    )
                )
            )
            assert parcels == charged


def _assert_coupon_books(shop: Shop, promotion_id: int, max_uses: int) -> None:
    """Uses counted == uses held == live orders holding one, never above the limit."""
    with shop.db.session() as s:
        uses = s.get(Promotion, promotion_id).uses
        held = set(
            s.scalars(
                select(PromotionRedemption.order_id).where(
                    PromotionRedemption.promotion_id == promotion_id,
                    PromotionRedemption.status == promotions.HELD,
                )
            )
        )
        live = set(s.scalars(select(Order.id).where(Order.status.in_(st.HOLDS_STOCK))))
        assert uses == len(held) <= max_uses
        assert held <= live | set(s.scalars(select(Order.id).where(Order.status.in_(st.CHARGED))))


def test_sellers_and_a_coupon_race_without_oversell_or_overuse(shop, db_url, tmp_path):
    """40 orders of two sellers' products with one coupon (5 uses) for 8 units of the scarcer
    product: exactly the coupon's 5 are accepted, every other is a 409, books balance."""
    tokens = shop.customers(40)
    shop.customers(1)
    a, seller_a = _seller_product(shop, 20, 1000)
    shop.customers(1)
    b, seller_b = _seller_product(shop, 8, 1500)
    promotion_id = _coupon(shop, "RACE5", 5)
    server = Server(db_url, tmp_path / "data", shop.secret)
    server.start()
    try:
        pm = _tokenise(server.url)
        responses = _race(
            40,
            lambda i: _checkout(server.url, tokens[i], [(a, 1), (b, 1)], pm, coupon_code="race5"),
        )
    finally:
        server.stop()
    codes = [r.status_code for r in responses]
    assert sorted(set(codes)) == [201, 409], codes
    assert codes.count(201) == 5
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"coupon_exhausted"}
    _assert_books_balance(shop, [a, b], {a: 20, b: 8})
    _assert_coupon_books(shop, promotion_id, 5)
    _assert_sellers_books(shop, [seller_a, seller_b])


@pytest.mark.slow
def test_sigkill_mid_checkout_with_sellers_and_a_coupon_recovers_every_book(shop, db_url, tmp_path):
    """kill -9 while orders of two sellers with a coupon sit between reservation and payment;
    the restarted server's recovery leaves nothing stuck and every book (stock, coupon uses,
    sellers' parcels and ledgers, charges) agreeing with the orders that survived."""
    tokens = shop.customers(40)
    shop.customers(1)
    a, seller_a = _seller_product(shop, 30, 1000)
    shop.customers(1)
    b, seller_b = _seller_product(shop, 30, 1500)
    promotion_id = _coupon(shop, "KILL", 25)
    data_dir = tmp_path / "data"
    srv = Server(
        db_url,
        data_dir,
        shop.secret,
        # As in tests/checkout/test_concurrency.py: the provider call waits so that reserved
        # orders are in flight when the kill lands.
        STORELOOP_TEST_HOOKS="provider_delay_ms=5000",
        STORELOOP_CHECKOUT_SAGA_TIMEOUT_SECONDS="120",
        STORELOOP_RECOVERY_INTERVAL_SECONDS="0.2",
    )
    srv.start()
    try:
        pm = _tokenise(srv.url)

        def buy(i: int):
            try:
                items = [(a, 1), (b, 1)]
                return _checkout(srv.url, tokens[i], items, pm, coupon_code="KILL").status_code
            except httpx.HTTPError:
                return None  # the server died under us

        with ThreadPoolExecutor(40) as pool:
            futures = [pool.submit(buy, i) for i in range(40)]

            def reserved_some() -> bool:
                with shop.db.session() as s:
                    reserved = s.scalar(select(Inventory.reserved).where(Inventory.product_id == b))
                    return (reserved or 0) >= 5

            assert poll(reserved_some, timeout=30)
            srv.kill9()
            results = [f.result() for f in futures]
    finally:
        srv.stop()
    assert None in results
    with shop.db.session() as s:
        stuck = select(func.count()).select_from(Order).where(Order.status.in_(st.IN_FLIGHT))
        assert s.scalar(stuck) > 0
        assert s.get(Promotion, promotion_id).uses > 0  # dead orders hold uses before recovery
    srv2 = Server(
        db_url,
        data_dir,
        shop.secret,
        STORELOOP_CHECKOUT_SAGA_TIMEOUT_SECONDS="1",
        STORELOOP_RECOVERY_INTERVAL_SECONDS="0.2",
    )
    srv2.start()
    try:

        def settled() -> bool:
            with shop.db.session() as s:
                in_flight = s.scalar(stuck)
                unsettled = s.scalar(
                    select(func.count())
                    .select_from(SimPaymentIntent)
                    .where(SimPaymentIntent.status == "processing")
                )
            return in_flight == 0 and unsettled == 0

        assert poll(settled, timeout=60)
    finally:
        srv2.stop()
    _assert_books_balance(shop, [a, b], {a: 30, b: 30})
    _assert_coupon_books(shop, promotion_id, 25)
    with shop.db.session() as s:
        charged = set(s.scalars(select(Order.id).where(Order.status.in_(st.CHARGED))))
        for intent in s.scalars(select(SimPaymentIntent)):
            kept = intent.status == "succeeded" and intent.amount_refunded < intent.amount_minor
            assert kept == (intent.meta["order_id"] in charged)  # no charge without an order
    with shop.db.session(write=True) as s:
        fulfilment.settle_orders(s)  # whatever cancelled an order, its sale is undone
    _assert_sellers_books(shop, [seller_a, seller_b])
