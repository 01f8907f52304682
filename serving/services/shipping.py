"""The simulated carrier: labels, tracking numbers and tracking events over time.

Creating a shipment is idempotent per order (unique ``order_id``), so the checkout and the
recovery routine may both try without ever making two parcels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from serving.core import ids
from serving.core.clock import utcnow
from serving.db.bulk import Bound, BulkInsert, BulkStatement, run_all
from serving.db.tables.shipping import Shipment, ShipmentEvent

CARRIER = "SimPost"
DESCRIPTIONS = {
    "label_created": "Shipping label created",
    "in_transit": "Parcel handed to the carrier, in transit",
    "delivered": "Delivered to the recipient",
    "cancelled": "Shipment cancelled before dispatch",
}


_NEW_SHIPMENT = insert(Shipment.__table__).returning(Shipment.__table__.c.id)
_NEW_EVENT = insert(ShipmentEvent.__table__)
_NEW_SHIPMENT_ROWS = BulkInsert(Shipment.__table__)
# A new shipment's first event, finding the shipment by its (unique) order id: many labels'
# events in one statement without reading the new shipments' ids back.
_FIRST_EVENTS = BulkStatement(
    insert(ShipmentEvent.__table__).values(
        shipment_id=select(Shipment.__table__.c.id)
        .where(Shipment.__table__.c.order_id == bindparam("b_order_id"))
        .scalar_subquery(),
        status="label_created",
        description=bindparam("b_description"),
        occurred_at=bindparam("b_now"),
    ),
    one_statement=True,
)


def create_shipment(session: Session, *, order_id: str) -> int:
    """Create the label for an order (inside the caller's transaction); returns its id."""
    return new_label(session, order_id=order_id, now=utcnow())[0]


def new_label(session: Session, *, order_id: str, now: datetime) -> tuple[int, dict[str, Any]]:
    """Create the label (two prebuilt statements); returns its id and what
    :func:`shipment_of` would show for it, so the caller need not read it back."""
    tracking = "SP" + ids.token_hex(6).upper()
    conn = session.connection()
    shipment_id = conn.execute(
        _NEW_SHIPMENT,
        {
            "order_id": order_id,
            "carrier": CARRIER,
            "tracking_number": tracking,
            "status": "label_created",
            "created_at": now,
            "updated_at": now,
        },
    ).scalar_one()
    description = DESCRIPTIONS["label_created"]
    conn.execute(
        _NEW_EVENT,
        {
            "shipment_id": shipment_id,
            "status": "label_created",
            "description": description,
            "occurred_at": now,
        },
    )
    shown = {
        "carrier": CARRIER,
        "tracking_number": tracking,
        "status": "label_created",
        "events": [{"status": "label_created", "description": description, "at": now.isoformat()}],
    }
    return shipment_id, shown


@dataclass
class BoundLabels:
    """New labels for many orders, bound before the transaction (:mod:`serving.db.bulk`)."""

    shipments: Bound
    events: Bound
    #: What :func:`shipment_of` will show for each order, in the order of the order ids.
    shown: list[dict[str, Any]]

    @property
    def statements(self) -> list[Bound]:
        """In order: each event finds its shipment by the order's id."""
        return [self.shipments, self.events]

    def run(self, conn: Connection) -> None:
        run_all(conn, self.statements)


def bind_labels(dialect: Dialect, *, order_ids: list[str], now: datetime) -> BoundLabels:
    """:func:`new_label` for many orders in two statements (the batched checkout), bound now
    and run later inside the caller's transaction."""
    trackings = ["SP" + ids.token_hex(6).upper() for _ in order_ids]
    shipments = _NEW_SHIPMENT_ROWS.bind(
        dialect,
        [
            {
                "order_id": order_id,
                "carrier": CARRIER,
                "tracking_number": tracking,
                "status": "label_created",
                "created_at": now,
                "updated_at": now,
            }
            for order_id, tracking in zip(order_ids, trackings, strict=True)
        ],
    )
    description = DESCRIPTIONS["label_created"]
    events = _FIRST_EVENTS.bind(
        dialect,
        [
            {"b_order_id": order_id, "b_description": description, "b_now": now}
            for order_id in order_ids
        ],
    )
    at = now.isoformat()
    shown = [
        {
            "carrier": CARRIER,
            "tracking_number": tracking,
            "status": "label_created",
            "events": [{"status": "label_created", "description": description, "at": at}],
        }
        for tracking in trackings
    ]
    return BoundLabels(shipments, events, shown)


def add_event(session: Session, *, shipment_id: int, status: str) -> None:
    session.execute(
        insert(ShipmentEvent).values(
            shipment_id=shipment_id,
            status=status,
            description=DESCRIPTIONS[status],
            occurred_at=utcnow(),
        )
    )


def advance(session: Session, *, order_id: str, from_status: str, to_status: str) -> dict | None:
    """Move the order's shipment one tracking step; None if it was not in ``from_status``."""
    row = session.execute(
        select(Shipment.id, Shipment.carrier, Shipment.tracking_number).where(
            Shipment.order_id == order_id, Shipment.status == from_status
        )
    ).first()
    if row is None:
        return None
    result = session.execute(
        update(Shipment)
        .where(Shipment.id == row.id, Shipment.status == from_status)
        .values(status=to_status, updated_at=utcnow())
    )
    if result.rowcount != 1:
        return None
    add_event(session, shipment_id=row.id, status=to_status)
    return {"carrier": row.carrier, "tracking": row.tracking_number}


def shipment_of(session: Session, order_id: str) -> dict[str, Any] | None:
    row = session.execute(
        select(Shipment.id, Shipment.carrier, Shipment.tracking_number, Shipment.status).where(
            Shipment.order_id == order_id
        )
    ).first()
    if row is None:
        return None
    events = session.execute(
        select(ShipmentEvent.status, ShipmentEvent.description, ShipmentEvent.occurred_at)
        .where(ShipmentEvent.shipment_id == row.id)
        .order_by(ShipmentEvent.id)
    ).all()
    return {
        "carrier": row.carrier,
        "tracking_number": row.tracking_number,
        "status": row.status,
        "events": [
            {"status": e.status, "description": e.description, "at": e.occurred_at.isoformat()}
            for e in events
        ],
    }
