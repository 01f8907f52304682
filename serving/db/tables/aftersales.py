"""After delivery: return requests and their lines, and payment disputes (chargebacks).

``sim_disputes`` is the simulated provider's own table, like the other ``sim_*`` tables: the
shop never reads it, it asks the provider (:mod:`serving.services.aftersales.provider_disputes`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class ReturnRequest(Base):
    __tablename__ = "returns"
    __table_args__ = (Index("ix_returns_user_created", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    # requested | authorized | rejected | refunded
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200), default="")
    currency: Mapped[str] = mapped_column(String(3))
    # The value of the returned lines at the prices fixed on the order.
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ReturnLine(Base):
    __tablename__ = "return_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    return_id: Mapped[str] = mapped_column(
        ForeignKey("returns.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="RESTRICT"), primary_key=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(BigInteger)
    # pending until received; then restock (back on hand) or write_off (damaged, not resold)
    disposition: Mapped[str] = mapped_column(String(16), default="pending")


class Dispute(Base):
    """The shop's record of a chargeback, keyed by the provider's dispute id."""

    __tablename__ = "disputes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), index=True)
    intent_id: Mapped[str] = mapped_column(String(40))
    # needs_response | under_review | won | lost
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(40))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    evidence: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


class SimDispute(Base):
    """The provider's side of a dispute (its database, as ``sim_payment_intents``)."""

    __tablename__ = "sim_disputes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    intent_id: Mapped[str] = mapped_column(
        ForeignKey("sim_payment_intents.id", ondelete="CASCADE"), index=True
    )
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(40))
    # needs_response | under_review | won | lost
    status: Mapped[str] = mapped_column(String(20))
    evidence: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
