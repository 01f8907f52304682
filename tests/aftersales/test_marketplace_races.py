"""Multi-seller orders racing on a real server: no oversell of any seller's stock, the books
balance, and every accepted order becomes exactly one parcel and one sale per seller."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import func, select

from devtools.shop_db import Shop
from serving.core.clock import utcnow
from serving.db.tables import User
from serving.db.tables.marketplace import SellerLedgerEntry, SellerProduct, SellerShipment
from serving.services.marketplace import fulfilment, sellers
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
