"""The simulated carrier: labels, tracking numbers and tracking events over time.

Creating a shipment is idempotent per order (unique ``order_id``), so the checkout and the
recovery routine may both try without ever making two parcels.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.db.tables.shipping import Shipment, ShipmentEvent

CARRIER = "SimPost"
DESCRIPTIONS = {
    "label_created": "Shipping label created",
    "in_transit": "Parcel handed to the carrier, in transit",
    "delivered": "Delivered to the recipient",
    "cancelled": "Shipment cancelled before dispatch",
}


def create_shipment(session: Session, *, order_id: str) -> int:
    """Create the label for an order (inside the caller's transaction); returns its id."""
    now = utcnow()
    shipment_id = session.execute(
        insert(Shipment)
        .values(
            order_id=order_id,
            carrier=CARRIER,
            tracking_number="SP" + secrets.token_hex(6).upper(),
            status="label_created",
            created_at=now,
            updated_at=now,
        )
        .returning(Shipment.id)
    ).scalar_one()
    add_event(session, shipment_id=shipment_id, status="label_created")
    return shipment_id


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
