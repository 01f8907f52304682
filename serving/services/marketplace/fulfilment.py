"""Per-seller parcels and the sale, commission and refund entries of the payout ledger.

The checkout saga pays an order once and labels it once; it knows nothing of sellers. This
pass (:func:`settle_orders`, run by the marketplace loop and on demand) turns what the saga
did into the sellers' view:

* an order that reached ``fulfilled`` (or later) gets one parcel per seller of its lines, a
  ``sale`` entry of that seller's line totals and a ``commission`` entry of minus
  ``round_half_up(sale × commission_bps / 10000)``. The checkout writes these in the
  transaction that labels the order (:func:`opening_rows` on its hot paths, :func:`open_parcels`
  on the general one), so an order is never seen labelled without its sellers' parcels; the
  pass only catches an order that a path before that change labelled;
* an order that was cancelled or refunded after that gets a ``refund`` of minus the sale and a
  ``commission_refund`` of the commission back, and its parcels are cancelled.

Every entry's ``ref`` is derived from its cause (``sale:<order>:<seller>`` …) and unique, so a
pass that dies half-way or runs twice books nothing twice: the unique index is the guard, not a
read-then-write. Money stays in integer minor units; a rounding rule is applied once per seller
and order (never per line), so the commission on a seller's share of an order is exact to the
minor unit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from serving.core import ids
from serving.core.clock import utcnow
from serving.core.errors import Conflict, NotFound
from serving.db.tables.marketplace import Seller, SellerLedgerEntry, SellerProduct, SellerShipment
from serving.db.tables.orders import Order, OrderLine
from serving.services.checkout import order_states as st

CARRIER = "SimPost"
#: Orders whose parcels are labelled: money kept and past the fraud hold.
LABELLED = frozenset({st.FULFILLED, st.SHIPPED, st.DELIVERED})
UNDONE = frozenset({st.CANCELLED, st.REFUNDED})


def commission_of(amount_minor: int, bps: int) -> int:
    """``amount × bps / 10000`` rounded half up, in minor units (non-negative amounts)."""
    return (amount_minor * bps + 5000) // 10000


@dataclass(frozen=True)
class SellerShare:
    seller_id: int
    commission_bps: int
    amount_minor: int
    units: int


def line_shares(lines: Iterable[tuple[int | None, int, int, int]]) -> list[SellerShare]:
    """Each seller's share of an order from its lines as the checkout priced them:
    ``(seller_id or None, commission_bps, line_total_minor, quantity)``; first-party lines
    (no seller) are left out. In seller id order, as :func:`seller_shares` gives them."""
    totals: dict[int, list[int]] = {}
    for seller_id, bps, amount, units in lines:
        if seller_id is None:
            continue
        share = totals.setdefault(seller_id, [bps, 0, 0])
        share[1] += amount
        share[2] += units
    return [SellerShare(sid, v[0], v[1], v[2]) for sid, v in sorted(totals.items())]


def _parcel_row(order_id: str, share: SellerShare, now: datetime) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "seller_id": share.seller_id,
        "carrier": CARRIER,
        "tracking_number": "SM" + ids.token_hex(6).upper(),
        "status": "label_created",
        "units": share.units,
        "created_at": now,
        "updated_at": now,
    }


def _sale_rows(
    order_id: str, currency: str, share: SellerShare, now: datetime
) -> list[dict[str, Any]]:
    """The ``sale`` and ``commission`` entries of one seller's share of a labelled order."""
    common = {"seller_id": share.seller_id, "order_id": order_id, "currency": currency}
    return [
        {
            **common,
            "kind": "sale",
            "amount_minor": share.amount_minor,
            "ref": f"sale:{order_id}:{share.seller_id}",
            "created_at": now,
        },
        {
            **common,
            "kind": "commission",
            "amount_minor": -commission_of(share.amount_minor, share.commission_bps),
            "ref": f"commission:{order_id}:{share.seller_id}",
            "created_at": now,
        },
    ]


def opening_rows(
    *, order_id: str, currency: str, shares: list[SellerShare], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The parcels and ledger entries a labelled order opens, for the checkout's hot paths
    to insert with the label (no read: the shares come from the order's priced lines)."""
    parcels = [_parcel_row(order_id, share, now) for share in shares]
    entries = [row for share in shares for row in _sale_rows(order_id, currency, share, now)]
    return parcels, entries


def open_priced(
    session: Session,
    *,
    order_id: str,
    currency: str,
    shares: list[SellerShare] | None,
    now: datetime,
) -> None:
    """Open a just-labelled order's parcels in the label's transaction; no commit.

    ``shares`` as the checkout priced the lines (nothing to read); None when it did not keep
    them (an order read back), and then :func:`open_parcels` reads them."""
    if shares is None:
        open_parcels(session, order_id=order_id)
        return
    if not shares:
        return  # the platform's own lines only: not one statement more
    parcels, entries = opening_rows(order_id=order_id, currency=currency, shares=shares, now=now)
    session.execute(insert(SellerShipment.__table__), parcels)
    session.execute(insert(SellerLedgerEntry.__table__), entries)


def seller_shares(session: Session, order_id: str) -> list[SellerShare]:
    """Each seller's line totals and units in one order (first-party lines left out)."""
    rows = session.execute(
        select(
            SellerProduct.seller_id,
            Seller.commission_bps,
            func.sum(OrderLine.line_total_minor),
            func.sum(OrderLine.quantity),
        )
        .join(SellerProduct, SellerProduct.product_id == OrderLine.product_id)
        .join(Seller, Seller.id == SellerProduct.seller_id)
        .where(OrderLine.order_id == order_id)
        .group_by(SellerProduct.seller_id, Seller.commission_bps)
        .order_by(SellerProduct.seller_id)
    ).all()
    return [SellerShare(r[0], r[1], int(r[2]), int(r[3])) for r in rows]


def book(
    session: Session,
    *,
    seller_id: int,
    order_id: str | None,
    kind: str,
    amount_minor: int,
    currency: str,
    ref: str,
) -> bool:
    """Insert one ledger entry unless its ``ref`` is booked already; True if it was new."""
    table = SellerLedgerEntry.__table__
    values = {
        "seller_id": seller_id,
        "order_id": order_id,
        "kind": kind,
        "amount_minor": amount_minor,
        "currency": currency,
        "ref": ref,
        "created_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt = (
            postgresql.insert(table).values(values).on_conflict_do_nothing(index_elements=["ref"])
        )
    else:
        stmt = sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=["ref"])
    return session.execute(stmt.returning(table.c.id)).first() is not None


def _booked(session: Session, ref: str) -> int | None:
    return session.scalar(
        select(SellerLedgerEntry.amount_minor).where(SellerLedgerEntry.ref == ref)
    )


def open_parcels(session: Session, *, order_id: str) -> int:
    """Parcels and sale/commission entries of one labelled order; no commit. Returns the
    parcels opened (0 when a previous pass did it)."""
    order = session.execute(
        select(Order.status, Order.currency).where(Order.id == order_id)
    ).first()
    if order is None or order.status not in LABELLED:
        return 0
    opened = 0
    now = utcnow()
    for share in seller_shares(session, order_id):
        sale, commission = _sale_rows(order_id, order.currency, share, now)
        if not book(session, **_entry(sale)):
            continue  # booked by an earlier pass, with its parcel
        book(session, **_entry(commission))
        session.add(SellerShipment(**_parcel_row(order_id, share, now)))
        opened += 1
    session.flush()
    return opened


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    """A ledger row as :func:`book`'s keywords (``book`` stamps its own time)."""
    return {k: v for k, v in row.items() if k != "created_at"}


def reverse_order(session: Session, *, order_id: str) -> int:
    """Undo the sellers' sale of a cancelled or refunded order; no commit. Returns entries."""
    shares = seller_shares(session, order_id)
    if not shares:
        return 0  # the platform's own lines only: nothing of a seller to undo
    currency = session.scalar(select(Order.currency).where(Order.id == order_id))
    booked = 0
    for share in shares:
        sale = _booked(session, f"sale:{order_id}:{share.seller_id}")
        if sale is None:
            continue  # never booked: nothing to undo
        commission = _booked(session, f"commission:{order_id}:{share.seller_id}") or 0
        # What returns refunded already is not refunded again.
        returned = returned_of(session, order_id=order_id, seller_id=share.seller_id)
        if book(
            session,
            seller_id=share.seller_id,
            order_id=order_id,
            kind="refund",
            amount_minor=-(sale - returned["refund"]),
            currency=currency or "EUR",
            ref=f"cancel:{order_id}:{share.seller_id}",
        ):
            booked += 1
            book(
                session,
                seller_id=share.seller_id,
                order_id=order_id,
                kind="commission_refund",
                amount_minor=-commission - returned["commission_refund"],
                currency=currency or "EUR",
                ref=f"cancel_commission:{order_id}:{share.seller_id}",
            )
    session.execute(
        update(SellerShipment)
        .where(SellerShipment.order_id == order_id, SellerShipment.status == "label_created")
        .values(status="cancelled", updated_at=utcnow())
    )
    return booked


def returned_of(session: Session, *, order_id: str, seller_id: int) -> dict[str, int]:
    """What returns of this order booked for this seller so far (positive figures)."""
    rows = session.execute(
        select(SellerLedgerEntry.kind, func.sum(SellerLedgerEntry.amount_minor))
        .where(
            SellerLedgerEntry.order_id == order_id,
            SellerLedgerEntry.seller_id == seller_id,
            SellerLedgerEntry.ref.like("return%"),
        )
        .group_by(SellerLedgerEntry.kind)
    ).all()
    sums = {kind: int(total) for kind, total in rows}
    return {
        "refund": -sums.get("refund", 0),
        "commission_refund": sums.get("commission_refund", 0),
    }


def book_return(
    session: Session, *, return_id: str, order_id: str, lines: list[tuple[int, int]]
) -> None:
    """A refunded return's lines (product id, amount) against their sellers; no commit.

    The seller gives back the refunded amount and gets back the commission on it (rounded the
    same way, and never more than the commission charged on the order)."""
    owners = dict(
        session.execute(
            select(SellerProduct.product_id, SellerProduct.seller_id).where(
                SellerProduct.product_id.in_([p for p, _ in lines])
            )
        ).all()
    )
    per_seller: dict[int, int] = defaultdict(int)
    for product_id, amount in lines:
        if product_id in owners:
            per_seller[owners[product_id]] += amount
    currency = session.scalar(select(Order.currency).where(Order.id == order_id)) or "EUR"
    for seller_id, amount in sorted(per_seller.items()):
        if _booked(session, f"sale:{order_id}:{seller_id}") is None:
            continue
        bps = session.scalar(select(Seller.commission_bps).where(Seller.id == seller_id)) or 0
        charged = -(_booked(session, f"commission:{order_id}:{seller_id}") or 0)
        back = returned_of(session, order_id=order_id, seller_id=seller_id)["commission_refund"]
        give_back = min(commission_of(amount, bps), charged - back)
        book(
            session,
            seller_id=seller_id,
            order_id=order_id,
            kind="refund",
            amount_minor=-amount,
            currency=currency,
            ref=f"return:{return_id}:{seller_id}",
        )
        book(
            session,
            seller_id=seller_id,
            order_id=order_id,
            kind="commission_refund",
            amount_minor=give_back,
            currency=currency,
            ref=f"return_commission:{return_id}:{seller_id}",
        )


def dispute_shares(session: Session, *, order_id: str, amount_minor: int) -> dict[int, int]:
    """Each seller's part of a disputed amount: in proportion to their share of the order's
    total, rounded down (the platform carries the remainder and its own lines' part)."""
    total = session.scalar(select(Order.total_minor).where(Order.id == order_id)) or 0
    if total <= 0:
        return {}
    return {
        share.seller_id: min(share.amount_minor, amount_minor * share.amount_minor // total)
        for share in seller_shares(session, order_id)
        if _booked(session, f"sale:{order_id}:{share.seller_id}") is not None
    }


def settle_orders(session: Session, *, limit: int = 500) -> dict[str, int]:
    """One pass: open parcels of labelled orders, undo the sale of dead ones, deliver parcels
    of delivered orders. Commits; returns counts."""
    seller_line = (
        select(OrderLine.order_id)
        .join(SellerProduct, SellerProduct.product_id == OrderLine.product_id)
        .where(OrderLine.order_id == Order.id)
    )
    has_parcel = select(SellerShipment.id).where(SellerShipment.order_id == Order.id)
    to_open = list(
        session.scalars(
            select(Order.id)
            .where(
                Order.status.in_(sorted(LABELLED)),
                exists(seller_line),
                ~exists(has_parcel),
            )
            .order_by(Order.id)
            .limit(limit)
        )
    )
    cancel_ref = select(SellerLedgerEntry.id).where(
        SellerLedgerEntry.order_id == Order.id, SellerLedgerEntry.ref.like("cancel:%")
    )
    sale_ref = select(SellerLedgerEntry.id).where(
        SellerLedgerEntry.order_id == Order.id, SellerLedgerEntry.kind == "sale"
    )
    to_reverse = list(
        session.scalars(
            select(Order.id)
            .where(Order.status.in_(sorted(UNDONE)), exists(sale_ref), ~exists(cancel_ref))
            .order_by(Order.id)
            .limit(limit)
        )
    )
    opened = sum(open_parcels(session, order_id=o) for o in to_open)
    reversed_ = sum(reverse_order(session, order_id=o) for o in to_reverse)
    delivered = session.execute(
        update(SellerShipment)
        .where(
            SellerShipment.status == "shipped",
            SellerShipment.order_id.in_(select(Order.id).where(Order.status == st.DELIVERED)),
        )
        .values(status="delivered", updated_at=utcnow())
    ).rowcount
    session.commit()
    return {"parcels_opened": opened, "orders_reversed": reversed_, "delivered": delivered}


def seller_orders(session: Session, *, seller_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """The seller's side of their orders: only their own lines and parcel, newest first."""
    order_ids = list(
        session.scalars(
            select(OrderLine.order_id)
            .join(SellerProduct, SellerProduct.product_id == OrderLine.product_id)
            .join(Order, Order.id == OrderLine.order_id)
            .where(SellerProduct.seller_id == seller_id)
            .group_by(OrderLine.order_id, Order.created_at)
            .order_by(Order.created_at.desc(), OrderLine.order_id)
            .limit(limit)
        )
    )
    return [seller_order(session, seller_id=seller_id, order_id=o) for o in order_ids]


def seller_order(session: Session, *, seller_id: int, order_id: str) -> dict[str, Any]:
    """One order as its seller sees it; 404 when none of its lines are theirs."""
    lines = session.execute(
        select(
            OrderLine.product_id,
            OrderLine.title,
            OrderLine.quantity,
            OrderLine.unit_price_minor,
            OrderLine.line_total_minor,
        )
        .join(SellerProduct, SellerProduct.product_id == OrderLine.product_id)
        .where(OrderLine.order_id == order_id, SellerProduct.seller_id == seller_id)
        .order_by(OrderLine.product_id)
    ).all()
    if not lines:
        raise NotFound("Order", order_id)
    order = session.execute(
        select(Order.status, Order.currency, Order.shipping_address, Order.created_at).where(
            Order.id == order_id
        )
    ).one()
    parcel = session.execute(
        select(SellerShipment.carrier, SellerShipment.tracking_number, SellerShipment.status).where(
            SellerShipment.order_id == order_id, SellerShipment.seller_id == seller_id
        )
    ).first()
    return {
        "order_id": order_id,
        "status": order.status,
        "currency": order.currency,
        "created_at": order.created_at,
        # The seller ships this part, so they see where to; nothing of the payment or the rest.
        "shipping_address": order.shipping_address,
        "lines": [dict(line._mapping) for line in lines],
        "subtotal_minor": sum(line.line_total_minor for line in lines),
        "parcel": None if parcel is None else dict(parcel._mapping),
    }


def ship_parcel(session: Session, *, seller_id: int, order_id: str) -> dict[str, Any]:
    """The seller hands their parcel to the carrier: label_created → shipped. Commits."""
    seller_order(session, seller_id=seller_id, order_id=order_id)  # 404 if not theirs
    result = session.execute(
        update(SellerShipment)
        .where(
            SellerShipment.order_id == order_id,
            SellerShipment.seller_id == seller_id,
            SellerShipment.status == "label_created",
        )
        .values(status="shipped", updated_at=utcnow())
    )
    if result.rowcount != 1:
        session.rollback()
        current = session.scalar(
            select(SellerShipment.status).where(
                SellerShipment.order_id == order_id, SellerShipment.seller_id == seller_id
            )
        )
        raise Conflict(
            f"The parcel of order {order_id} is {current or 'not labelled yet'} and cannot ship",
            type_="https://storeloop.dev/problems/parcel-not-shippable",
            parcel_status=current,
        )
    session.commit()
    return seller_order(session, seller_id=seller_id, order_id=order_id)
