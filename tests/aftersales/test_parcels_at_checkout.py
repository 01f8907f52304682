"""A multi-seller order has its sellers' parcels, sale and commission the moment it is
labelled: both hot checkout paths (the batch's T2 and the per-order saga's ``_finish_paid``)
write them in the order's own transaction, not a later background pass."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from serving.db.tables import User
from serving.db.tables.marketplace import SellerLedgerEntry, SellerShipment
from serving.services.checkout import order_states as st
from serving.services.checkout import saga, service
from serving.services.checkout.runtime import NoEvents
from tests.aftersales.conftest import seller_product, settle
from tests.checkout.conftest import order_body, tokenise
from tests.checkout.test_batch import run_batch


@pytest.fixture
def rt(app, client):
    return service.runtime(app)


@pytest.fixture
def user_id(app, customer):
    with app.state.components.db.session() as s:
        return s.scalar(select(User.id).where(User.email == customer.email))


def _books(app, order_id: str) -> tuple[dict[int, tuple[str, int]], dict[tuple[int, str], int]]:
    """The order's parcels (seller → status, units) and ledger entries ((seller, kind) → amount)."""
    with app.state.components.db.session() as s:
        parcels = {
            row.seller_id: (row.status, row.units)
            for row in s.scalars(select(SellerShipment).where(SellerShipment.order_id == order_id))
        }
        entries = {
            (row.seller_id, row.kind): row.amount_minor
            for row in s.scalars(
                select(SellerLedgerEntry).where(SellerLedgerEntry.order_id == order_id)
            )
        }
    return parcels, entries


@pytest.fixture
def goods(make_seller, make_product, category):
    alice, bob = make_seller(1000), make_seller(1500)
    return {
        "alice": alice,
        "bob": bob,
        "pa": seller_product(alice, category, price=1999),
        "pb": seller_product(bob, category, price=3000),
        "own": make_product(50, price=500),
    }


def test_batched_orders_are_labelled_with_their_sellers_parcels(
    app, client, admin, rt, user_id, goods
):
    alice, bob = goods["alice"].seller_id, goods["bob"].seller_id
    pm = tokenise(client)
    bodies = [
        order_body(pm, [(goods["pa"], 2), (goods["pb"], 1), (goods["own"], 1)]),
        order_body(pm, [(goods["own"], 2)]),
        order_body(pm, [(goods["pa"], 1)]),
    ]
    outcomes, batcher = run_batch(rt, [(uuid.uuid4().hex, b) for b in bodies], user_id)
    assert batcher.batches == 1 and [o.status for o in outcomes] == [201, 201, 201]
    mixed, own_only, alice_only = (o.body["id"] for o in outcomes)

    # Read before any marketplace pass has run: the batch's T2 wrote them with the label.
    parcels, entries = _books(app, mixed)
    assert parcels == {alice: ("label_created", 2), bob: ("label_created", 1)}
    assert entries == {
        (alice, "sale"): 3998,
        (alice, "commission"): -400,
        (bob, "sale"): 3000,
        (bob, "commission"): -450,
    }
    assert _books(app, own_only) == ({}, {})
    assert _books(app, alice_only) == (
        {alice: ("label_created", 1)},
        {(alice, "sale"): 1999, (alice, "commission"): -200},
    )
    assert settle(admin)["parcels_opened"] == 0  # nothing left for the pass


def test_a_per_order_checkout_is_labelled_with_its_sellers_parcels(
    app, client, admin, rt, user_id, goods
):
    alice, bob = goods["alice"].seller_id, goods["bob"].seller_id
    body = order_body(tokenise(client), [(goods["pb"], 1), (goods["pa"], 1)])
    outcome = saga.place_order(
        rt, user_id=user_id, key=uuid.uuid4().hex, body=body, events=NoEvents()
    )
    assert outcome.status == 201 and outcome.body["status"] == st.FULFILLED
    parcels, entries = _books(app, outcome.body["id"])
    assert parcels == {alice: ("label_created", 1), bob: ("label_created", 1)}
    assert entries[(alice, "sale")] == 1999 and entries[(bob, "commission")] == -450
    assert settle(admin)["parcels_opened"] == 0  # nothing left for the pass
