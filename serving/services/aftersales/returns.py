"""Returns: a customer asks within the window, the shop authorizes, receives and refunds.

::

    requested ─authorize─▶ authorized ─receive─▶ received ─refund─▶ refunded
        └──────────┴─reject─▶ rejected

Receiving puts each unit back on hand (a ``return_restock`` stock movement) or writes it off
(``return_write_off``, a movement of zero that keeps the audit trail) in the transaction that
marks the return ``received``; the refund is then made at the provider *outside* any
transaction under the key ``<return id>:refund`` and recorded in a second transaction. A crash
between the two leaves a ``received`` return that :func:`finish_received` refunds later with
the same key, so the customer is refunded exactly once. A return is partial when it names
fewer units than were ordered; several returns of one order never add up to more than it
holds (the order row is locked while the request is checked).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from serving.core import ids
from serving.core.clock import utcnow
from serving.core.errors import Conflict, NotFound, ProblemError, Unprocessable
from serving.db.engine import Database
from serving.db.tables import Inventory, StockMovement
from serving.db.tables.aftersales import ReturnLine, ReturnRequest
from serving.db.tables.orders import Order, OrderLine, OrderTransition
from serving.db.tables.payments import Payment
from serving.services.checkout import order_states as st
from serving.services.checkout.payments import ProviderError, ProviderTimeout, ProviderUnavailable
from serving.services.infra import notifications
from serving.services.marketplace import fulfilment

log = logging.getLogger("storeloop.returns")

WINDOW = timedelta(days=30)
DISPOSITIONS = frozenset({"restock", "write_off"})


def _problem(status: int, code: str, detail: str, **ext: Any) -> ProblemError:
    return ProblemError(
        status, detail=detail, type_=f"https://storeloop.dev/problems/{code}", code=code, **ext
    )


def delivered_at(session: Session, order_id: str) -> datetime | None:
    return session.scalar(
        select(func.max(OrderTransition.created_at)).where(
            OrderTransition.order_id == order_id, OrderTransition.to_status == st.DELIVERED
        )
    )


def returnable(session: Session, order_id: str) -> dict[int, int]:
    """Units per product that may still be returned (ordered minus open or done returns)."""
    ordered = dict(
        session.execute(
            select(OrderLine.product_id, OrderLine.quantity).where(OrderLine.order_id == order_id)
        ).all()
    )
    taken = session.execute(
        select(ReturnLine.product_id, func.sum(ReturnLine.quantity))
        .join(ReturnRequest, ReturnRequest.id == ReturnLine.return_id)
        .where(ReturnRequest.order_id == order_id, ReturnRequest.status != "rejected")
        .group_by(ReturnLine.product_id)
    ).all()
    for product_id, quantity in taken:
        ordered[product_id] = ordered.get(product_id, 0) - int(quantity)
    return ordered


def request_return(
    session: Session,
    *,
    user_id: int,
    order_id: str,
    lines: list[tuple[int, int]],
    reason: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A customer's return request for some units of their delivered order. Commits."""
    now = now or utcnow()
    order = session.execute(
        select(Order.status, Order.currency)
        .where(Order.id == order_id, Order.user_id == user_id)
        .with_for_update()  # two requests at once cannot both take the last returnable unit
    ).first()
    if order is None:
        raise NotFound("Order", order_id)
    if order.status != st.DELIVERED:
        raise _problem(
            409,
            "not-returnable",
            f"Order {order_id} is {order.status}; only delivered orders can be returned",
            order_status=order.status,
        )
    delivered = delivered_at(session, order_id)
    if delivered is None or now > delivered + WINDOW:
        raise _problem(
            409,
            "return-window-closed",
            f"Returns of order {order_id} closed {WINDOW.days} days after delivery",
            delivered_at=delivered.isoformat() if delivered else None,
        )
    merged: dict[int, int] = {}
    for product_id, quantity in lines:
        merged[product_id] = merged.get(product_id, 0) + quantity
    left = returnable(session, order_id)
    prices = dict(
        session.execute(
            select(OrderLine.product_id, OrderLine.unit_price_minor).where(
                OrderLine.order_id == order_id
            )
        ).all()
    )
    for product_id, quantity in merged.items():
        if product_id not in prices:
            raise Unprocessable(
                f"Product {product_id} is not in order {order_id}", code="not_in_order"
            )
        if quantity > left.get(product_id, 0):
            raise _problem(
                409,
                "return-exceeds-order",
                f"Only {left.get(product_id, 0)} unit(s) of product {product_id} can still be "
                "returned",
                product_id=product_id,
                returnable=left.get(product_id, 0),
            )
    return_id = "ret_" + ids.token_hex(10)
    amount = sum(prices[p] * q for p, q in merged.items())
    session.add(
        ReturnRequest(
            id=return_id,
            order_id=order_id,
            user_id=user_id,
            status="requested",
            reason=reason,
            currency=order.currency,
            amount_minor=amount,
            refunded_minor=0,
            created_at=now,
            updated_at=now,
        )
    )
    session.flush()
    session.add_all(
        ReturnLine(return_id=return_id, product_id=p, quantity=q, unit_price_minor=prices[p])
        for p, q in sorted(merged.items())
    )
    session.commit()
    return return_dict(session, return_id)


def return_dict(session: Session, return_id: str, *, user_id: int | None = None) -> dict[str, Any]:
    query = select(ReturnRequest).where(ReturnRequest.id == return_id)
    if user_id is not None:
        query = query.where(ReturnRequest.user_id == user_id)
    r = session.scalar(query)
    if r is None:
        raise NotFound("Return", return_id)
    lines = session.scalars(
        select(ReturnLine).where(ReturnLine.return_id == return_id).order_by(ReturnLine.product_id)
    )
    return {
        "id": r.id,
        "order_id": r.order_id,
        "status": r.status,
        "reason": r.reason,
        "currency": r.currency,
        "amount_minor": r.amount_minor,
        "refunded_minor": r.refunded_minor,
        "lines": [
            {
                "product_id": line.product_id,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
                "disposition": line.disposition,
            }
            for line in lines
        ],
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }


def list_returns(session: Session, *, user_id: int | None, status: str | None = None) -> list:
    query = select(ReturnRequest.id).order_by(ReturnRequest.created_at.desc()).limit(200)
    if user_id is not None:
        query = query.where(ReturnRequest.user_id == user_id)
    if status is not None:
        query = query.where(ReturnRequest.status == status)
    return [return_dict(session, rid) for rid in session.scalars(query)]


def _move(session: Session, return_id: str, *, to: str, only_from: set[str]) -> None:
    result = session.execute(
        update(ReturnRequest)
        .where(ReturnRequest.id == return_id, ReturnRequest.status.in_(sorted(only_from)))
        .values(status=to, updated_at=utcnow())
    )
    if result.rowcount != 1:
        session.rollback()
        current = session.scalar(select(ReturnRequest.status).where(ReturnRequest.id == return_id))
        if current is None:
            raise NotFound("Return", return_id)
        raise Conflict(
            f"Return {return_id} is {current} and cannot become {to}",
            type_="https://storeloop.dev/problems/illegal-return-transition",
            current_status=current,
        )


def authorize(session: Session, return_id: str) -> dict[str, Any]:
    _move(session, return_id, to="authorized", only_from={"requested"})
    session.commit()
    return return_dict(session, return_id)


def reject(session: Session, return_id: str) -> dict[str, Any]:
    _move(session, return_id, to="rejected", only_from={"requested", "authorized"})
    session.commit()
    return return_dict(session, return_id)


def receive(
    db: Database,
    provider: Any,
    *,
    return_id: str,
    dispositions: dict[int, str],
    actor_user_id: int,
) -> dict[str, Any]:
    """The parcel arrived: stock back (or written off), then the refund at the provider."""
    with db.write_gate(), db.session(write=True) as s:
        lines = s.execute(
            select(ReturnLine.product_id, ReturnLine.quantity).where(
                ReturnLine.return_id == return_id
            )
        ).all()
        unknown = set(dispositions) - {line.product_id for line in lines}
        if unknown:
            raise Unprocessable(
                f"Product {min(unknown)} is not in return {return_id}", code="not_in_return"
            )
        _move(s, return_id, to="received", only_from={"authorized"})
        order_id = s.scalar(select(ReturnRequest.order_id).where(ReturnRequest.id == return_id))
        now = utcnow()
        for line in lines:
            disposition = dispositions.get(line.product_id, "restock")
            restock = disposition == "restock"
            if restock:
                s.execute(
                    update(Inventory)
                    .where(Inventory.product_id == line.product_id)
                    .values(on_hand=Inventory.on_hand + line.quantity, updated_at=now)
                )
            s.add(
                StockMovement(
                    product_id=line.product_id,
                    delta_on_hand=line.quantity if restock else 0,
                    delta_reserved=0,
                    reason="return_restock" if restock else "return_write_off",
                    actor_user_id=actor_user_id,
                    order_id=order_id,
                    note=f"{return_id}: {line.quantity} unit(s) {disposition}",
                    created_at=now,
                )
            )
            s.execute(
                update(ReturnLine)
                .where(ReturnLine.return_id == return_id, ReturnLine.product_id == line.product_id)
                .values(disposition=disposition)
            )
        s.commit()
    refund(db, provider, return_id=return_id)
    with db.session() as s:
        return return_dict(s, return_id)


def refund(db: Database, provider: Any, *, return_id: str) -> bool:
    """Refund a received return at the provider and record it; True when done.

    False (the return stays ``received``, retried by :func:`finish_received`) when the provider
    did not answer. A refund the provider refuses (more than is left of the charge, e.g. after
    a lost dispute) is a 409 and the return stays ``received`` for a person to look at."""
    with db.session() as s:
        r = s.execute(
            select(ReturnRequest.order_id, ReturnRequest.amount_minor, ReturnRequest.status).where(
                ReturnRequest.id == return_id
            )
        ).one()
        intent_id = s.scalar(select(Payment.intent_id).where(Payment.order_id == r.order_id))
    if r.status != "received":
        return r.status == "refunded"
    if intent_id is None:
        raise Conflict(f"Order {r.order_id} has no captured payment to refund")
    try:
        intent = provider.refund(
            intent_id, amount_minor=r.amount_minor, idempotency_key=f"{return_id}:refund"
        )
    except (ProviderTimeout, ProviderUnavailable) as exc:
        log.warning("refund of return %s not answered yet: %s", return_id, exc)
        return False
    except ProviderError as exc:
        raise Conflict(
            f"The provider refused the refund of return {return_id}: {exc}",
            type_="https://storeloop.dev/problems/refund-refused",
        ) from None
    with db.write_gate(), db.session(write=True) as s:
        moved = s.execute(
            update(ReturnRequest)
            .where(ReturnRequest.id == return_id, ReturnRequest.status == "received")
            .values(status="refunded", refunded_minor=r.amount_minor, updated_at=utcnow())
        ).rowcount
        if moved:
            # The provider's figure for the whole charge (returns and cancels together).
            s.execute(
                update(Payment)
                .where(
                    Payment.order_id == r.order_id,
                    Payment.refunded_minor < intent.amount_refunded,
                )
                .values(refunded_minor=intent.amount_refunded, updated_at=utcnow())
            )
            lines = s.execute(
                select(
                    ReturnLine.product_id, ReturnLine.quantity * ReturnLine.unit_price_minor
                ).where(ReturnLine.return_id == return_id)
            ).all()
            fulfilment.book_return(
                s, return_id=return_id, order_id=r.order_id, lines=[(p, int(a)) for p, a in lines]
            )
            user_id = s.scalar(select(Order.user_id).where(Order.id == r.order_id))
            notifications.enqueue(
                s,
                kind="order_refunded",
                user_id=user_id,
                order_id=r.order_id,
                amount=f"{r.amount_minor / 100:.2f}",
                currency=intent.currency,
            )
        s.commit()
    return True


def finish_received(db: Database, provider: Any) -> int:
    """Refund every return a crash or an outage left ``received`` (same keys: once only)."""
    with db.session() as s:
        pending = list(
            s.scalars(select(ReturnRequest.id).where(ReturnRequest.status == "received"))
        )
    done = 0
    for return_id in pending:
        try:
            done += refund(db, provider, return_id=return_id)
        except ProblemError:
            log.warning("return %s could not be refunded", return_id, exc_info=True)
    return done
