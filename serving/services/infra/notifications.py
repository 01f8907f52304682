"""Transactional emails, written to the outbox inside the transaction of the state change.

Writing the email row with the change (not sending it after commit) means a crash can never
lose the email of a committed order, nor send one for a rolled-back order. Delivery is the
outbox worker's job (:mod:`serving.services.infra.outbox`).
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from serving.core import ids
from serving.core.clock import utcnow
from serving.db.bulk import Bound, BulkInsert
from serving.db.tables import User
from serving.db.tables.notifications import OutboxMessage

TEMPLATES = {
    "order_confirmed": (
        "Your order {order_id} is confirmed",
        "Thank you! We received your payment of {total} {currency} for order {order_id}.",
    ),
    "order_cancelled": (
        "Your order {order_id} was cancelled",
        "Order {order_id} was cancelled ({reason}). Any payment taken will be refunded.",
    ),
    "order_refunded": (
        "Refund for order {order_id}",
        "We refunded {amount} {currency} for order {order_id}.",
    ),
    "order_shipped": (
        "Your order {order_id} is on its way",
        "Order {order_id} shipped with {carrier}, tracking number {tracking}.",
    ),
    "order_delivered": ("Your order {order_id} was delivered", "Order {order_id} was delivered."),
}


_NEW_MESSAGES = BulkInsert(OutboxMessage.__table__)
EMAILS_OF = select(User.__table__.c.id, User.__table__.c.email).where(
    User.__table__.c.id.in_(bindparam("b_user_ids", expanding=True))
)


def enqueue(
    session: Session, *, kind: str, user_id: int, order_id: str | None, **values: object
) -> None:
    """Add one email to the outbox (inside the caller's transaction; does not commit).

    Prebuilt Core statements on the session's connection: this runs once per order on the
    checkout's hot path.
    """
    enqueue_many(session, kind=kind, messages=[(user_id, order_id, values)])


def enqueue_many(
    session: Session, *, kind: str, messages: list[tuple[int, str | None, dict[str, object]]]
) -> None:
    """:func:`enqueue` for many emails of one kind in two statements.

    ``messages`` holds (user_id, order_id, template values) triples.
    """
    conn = session.connection()
    emails = emails_of(conn, [m[0] for m in messages])
    bind_many(conn.dialect, kind=kind, messages=messages, emails=emails).run(conn)


def emails_of(conn: Connection, user_ids: list[int]) -> dict[int, str]:
    """The users' addresses, to bind their emails with :func:`bind_many`."""
    users = sorted(set(user_ids))
    if not users:
        return {}
    return {row[0]: row[1] for row in conn.execute(EMAILS_OF, {"b_user_ids": users})}


def bind_many(
    dialect: Dialect,
    *,
    kind: str,
    messages: list[tuple[int, str | None, dict[str, object]]],
    emails: dict[int, str],
) -> Bound:
    """The outbox rows of many emails, bound before the transaction that will insert them
    (the batched checkout keeps its write lock for the statements alone)."""
    subject, body = TEMPLATES[kind]
    now = utcnow()
    rows = []
    for user_id, order_id, extra in messages:
        values = {"order_id": order_id, **extra}
        rows.append(
            {
                "message_id": f"<{ids.uuid4().hex}.{kind}@storeloop.dev>",
                "kind": kind,
                "order_id": order_id,
                "to_addr": emails.get(user_id) or "",
                "subject": subject.format(**values),
                "body": body.format(**values),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "lease_until": None,
                "last_error": "",
                "created_at": now,
                "sent_at": None,
            }
        )
    return _NEW_MESSAGES.bind(dialect, rows)
