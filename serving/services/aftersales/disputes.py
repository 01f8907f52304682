"""The shop's side of disputes: verified webhooks in, the amount frozen, evidence out, and the
sellers' ledger right whether the dispute is won or lost.

A dispute webhook is a hint, exactly like a payment webhook (docs/security.md, "Payment
trust"): its signature and shape are checked, then the dispute it names is read back from the
provider, and the intent behind it too; only the provider's status, amount and the intent's
order id are acted on. Event ids go into ``webhook_receipts`` as the payment events' do, so a
replay is acknowledged and ignored.

Ledger: when a dispute opens, each seller of the order gives their proportional part of the
disputed amount as a ``dispute_hold`` (the platform carries the rest). Won: a
``dispute_release`` of the same part gives it back, so the net is zero. Lost: the hold stays,
it *is* the chargeback. Either way every entry has a ref derived from the dispute and seller.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import BadRequest, Conflict, NotFound, ProblemError
from serving.db.tables.aftersales import Dispute
from serving.db.tables.orders import Order
from serving.db.tables.payments import Payment, WebhookReceipt
from serving.services.checkout.payments import ProviderError, ProviderTimeout, ProviderUnavailable
from serving.services.checkout.payments.webhooks import verify
from serving.services.marketplace import fulfilment

log = logging.getLogger("storeloop.disputes")

EVENT_TYPES = frozenset(
    {"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"}
)
_ID = r"^[A-Za-z0-9_:-]+$"


class _Object(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    id: str = Field(min_length=1, max_length=40, pattern=_ID)


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    object: _Object


class _Event(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    id: str = Field(min_length=1, max_length=40, pattern=_ID)
    type: str = Field(min_length=1, max_length=60, pattern=r"^[a-z_.]+$")
    data: _Data


class DisputeWebhookRefused(ProblemError):
    def __init__(self, detail: str, code: str) -> None:
        super().__init__(
            422,
            "Webhook refused",
            f"{detail}; nothing was changed",
            type_="https://storeloop.dev/problems/webhook-refused",
            code=code,
        )


def is_dispute_event(body: bytes) -> bool:
    """Cheap routing test for a shared webhook endpoint (the parse that follows is strict)."""
    return b'"charge.dispute.' in body


def receive(rt: Any, body: bytes, signature: str | None) -> dict[str, Any]:
    """Verify, read back, apply one dispute event. ``rt`` is the :class:`AftersalesRuntime`."""
    verify(rt.secret, body, signature)
    try:
        event = _Event.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadRequest(
            f"The webhook body is not a provider event: {where}: {first['msg']}"
        ) from None
    if event.type not in EVENT_TYPES:
        return {"received": True, "ignored": "event type"}
    try:
        dispute = rt.desk.retrieve(event.data.object.id)
        intent = (
            None
            if dispute is None
            else rt.provider.retrieve_many([dispute.intent_id]).get(dispute.intent_id)
        )
    except (ProviderTimeout, ProviderUnavailable) as exc:
        raise ProblemError(503, detail="The payment provider did not answer") from exc
    if dispute is None:
        raise DisputeWebhookRefused(
            f"The event names dispute {event.data.object.id}, which the provider does not know",
            "unknown_dispute",
        )
    order_id = intent.metadata.get("order_id") if intent is not None else None
    if not isinstance(order_id, str):
        return {"received": True, "ignored": "not an order's payment"}
    with rt.db.write_gate(), rt.db.session(write=True) as s:
        if not _record_receipt(s, event.id, event.type):
            return {"received": True, "duplicate": True}
        facts = apply(s, dispute=dispute, order_id=order_id)
        s.commit()
    for event_type, fields in facts:
        rt.emit(event_type, **fields)
    return {"received": True}


def _record_receipt(s: Session, event_id: str, event_type: str) -> bool:
    table = WebhookReceipt.__table__
    values = {"event_id": event_id, "event_type": event_type, "received_at": utcnow()}
    dialect = s.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(values).on_conflict_do_nothing(index_elements=["event_id"])
    return s.execute(stmt.returning(table.c.event_id)).first() is not None


def apply(s: Session, *, dispute: Any, order_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Bring the shop's dispute to the provider's state (any order of arrival); no commit."""
    facts: list[tuple[str, dict[str, Any]]] = []
    now = utcnow()
    order = s.execute(select(Order.user_id, Order.currency).where(Order.id == order_id)).first()
    if order is None:
        return facts
    row = s.get(Dispute, dispute.id)
    if row is None:
        row = Dispute(
            id=dispute.id,
            order_id=order_id,
            intent_id=dispute.intent_id,
            status=dispute.status,
            reason=dispute.reason,
            amount_minor=dispute.amount_minor,
            currency=dispute.currency,
            evidence=dispute.evidence,
            created_at=now,
            updated_at=now,
            closed_at=None,
        )
        s.add(row)
        s.flush()
        facts.append(
            (
                "dispute_opened",
                {
                    "user_id": order.user_id,
                    "order_id": order_id,
                    "props": {
                        "dispute_id": dispute.id,
                        "amount_minor": dispute.amount_minor,
                        "reason": dispute.reason,
                    },
                },
            )
        )
    # The sellers' sale is booked first if the marketplace pass has not got to this order yet,
    # so their part of the dispute has something to be held against.
    fulfilment.open_parcels(s, order_id=order_id)
    # The hold is booked whatever status the first event we see shows (a late created event
    # after the closed one changes nothing: refs are unique).
    shares = fulfilment.dispute_shares(s, order_id=order_id, amount_minor=dispute.amount_minor)
    for seller_id, part in sorted(shares.items()):
        if part > 0:
            fulfilment.book(
                s,
                seller_id=seller_id,
                order_id=order_id,
                kind="dispute_hold",
                amount_minor=-part,
                currency=dispute.currency,
                ref=f"dispute_hold:{dispute.id}:{seller_id}",
            )
    if row.status in ("won", "lost"):
        return facts  # final: a stale event never reopens it
    closing = dispute.status in ("won", "lost")
    row.status = dispute.status
    row.evidence = dispute.evidence or row.evidence
    row.updated_at = now
    if closing:
        row.closed_at = now
        if dispute.status == "won":
            for seller_id, part in sorted(shares.items()):
                if part > 0:
                    fulfilment.book(
                        s,
                        seller_id=seller_id,
                        order_id=order_id,
                        kind="dispute_release",
                        amount_minor=part,
                        currency=dispute.currency,
                        ref=f"dispute_release:{dispute.id}:{seller_id}",
                    )
        facts.append(
            (
                "dispute_closed",
                {
                    "user_id": order.user_id,
                    "order_id": order_id,
                    "props": {
                        "dispute_id": dispute.id,
                        "outcome": dispute.status,
                        "amount_minor": dispute.amount_minor,
                    },
                },
            )
        )
    return facts


def dispute_dict(row: Dispute, payment: Any = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "order_id": row.order_id,
        "status": row.status,
        "reason": row.reason,
        "amount_minor": row.amount_minor,
        "currency": row.currency,
        # Withdrawn by the provider while open; given back if won, gone if lost.
        "frozen_minor": row.amount_minor if row.status in ("needs_response", "under_review") else 0,
        "lost_minor": row.amount_minor if row.status == "lost" else 0,
        "evidence": row.evidence,
        "created_at": row.created_at,
        "closed_at": row.closed_at,
    }


def list_disputes(s: Session, status: str | None = None) -> list[dict[str, Any]]:
    query = select(Dispute).order_by(Dispute.created_at.desc()).limit(200)
    if status is not None:
        query = query.where(Dispute.status == status)
    return [dispute_dict(row) for row in s.scalars(query)]


def get_dispute(s: Session, dispute_id: str) -> dict[str, Any]:
    row = s.get(Dispute, dispute_id)
    if row is None:
        raise NotFound("Dispute", dispute_id)
    return dispute_dict(row)


def submit_evidence(rt: Any, *, dispute_id: str, evidence: str) -> dict[str, Any]:
    """Answer a dispute with evidence at the provider, then record what the provider says."""
    with rt.db.session() as s:
        row = s.get(Dispute, dispute_id)
        if row is None:
            raise NotFound("Dispute", dispute_id)
        status = row.status
    if status != "needs_response":
        raise Conflict(
            f"Dispute {dispute_id} is {status}; evidence can be given once, while it needs a "
            "response",
            type_="https://storeloop.dev/problems/dispute-closed-for-evidence",
            current_status=status,
        )
    try:
        dispute = rt.desk.submit_evidence(dispute_id, evidence)
    except ProviderError as exc:
        raise Conflict(str(exc)) from None
    with rt.db.write_gate(), rt.db.session(write=True) as s:
        s.execute(
            update(Dispute)
            .where(Dispute.id == dispute_id, Dispute.status == "needs_response")
            .values(status=dispute.status, evidence=evidence, updated_at=utcnow())
        )
        s.commit()
        return get_dispute(s, dispute_id)


def order_payment(s: Session, order_id: str) -> Any:
    return s.execute(
        select(Payment.intent_id, Payment.amount_minor).where(Payment.order_id == order_id)
    ).first()
