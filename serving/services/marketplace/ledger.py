"""What the platform owes each seller: balances and payouts over the append-only ledger."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from serving.core.errors import Conflict
from serving.db.tables.marketplace import Seller, SellerLedgerEntry

from .fulfilment import book


def balance(session: Session, seller_id: int) -> dict[str, Any]:
    """The sum of the seller's entries, and the sums per kind (how it came about)."""
    rows = session.execute(
        select(SellerLedgerEntry.kind, func.sum(SellerLedgerEntry.amount_minor))
        .where(SellerLedgerEntry.seller_id == seller_id)
        .group_by(SellerLedgerEntry.kind)
        .order_by(SellerLedgerEntry.kind)
    ).all()
    by_kind = {kind: int(total) for kind, total in rows}
    return {"seller_id": seller_id, "owed_minor": sum(by_kind.values()), "by_kind": by_kind}


def entries(session: Session, seller_id: int, *, limit: int = 200) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(SellerLedgerEntry)
        .where(SellerLedgerEntry.seller_id == seller_id)
        .order_by(SellerLedgerEntry.id)
        .limit(limit)
    )
    return [
        {
            "id": e.id,
            "order_id": e.order_id,
            "kind": e.kind,
            "amount_minor": e.amount_minor,
            "currency": e.currency,
            "created_at": e.created_at,
        }
        for e in rows
    ]


def pay_out(session: Session, seller_id: int) -> dict[str, Any]:
    """Pay the seller what is owed now: one ``payout`` entry of minus the balance. Commits.

    Numbered by the payouts before it (the ref is unique) and serialised on the seller's row,
    so two administrators paying at once pay once; the other gets a 409, as does a payout when
    nothing is owed."""
    # Payouts of one seller take turns on the seller's row: the balance is read only after an
    # earlier payout committed, so two at once cannot both pay it (PostgreSQL reads committed
    # data per statement; SQLite's write lock already serialises them).
    session.execute(select(Seller.id).where(Seller.id == seller_id).with_for_update())
    owed = balance(session, seller_id)["owed_minor"]
    currency = session.scalar(
        select(SellerLedgerEntry.currency)
        .where(SellerLedgerEntry.seller_id == seller_id)
        .order_by(SellerLedgerEntry.id.desc())
        .limit(1)
    )
    if owed <= 0:
        raise Conflict(f"Nothing is owed to seller {seller_id}", owed_minor=owed)
    number = (
        session.scalar(
            select(func.count())
            .select_from(SellerLedgerEntry)
            .where(SellerLedgerEntry.seller_id == seller_id, SellerLedgerEntry.kind == "payout")
        )
        or 0
    ) + 1
    if not book(
        session,
        seller_id=seller_id,
        order_id=None,
        kind="payout",
        amount_minor=-owed,
        currency=currency or "EUR",
        ref=f"payout:{seller_id}:{number}",
    ):
        session.rollback()
        raise Conflict(f"Payout {number} of seller {seller_id} was just made")
    session.commit()
    return {"seller_id": seller_id, "paid_minor": owed, "payout_no": number}
