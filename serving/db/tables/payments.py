"""Payments as the shop records them, plus the simulated provider's own tables.

The ``sim_*`` tables are "the provider's database": the shop's code never reads them, it talks
to the provider through :mod:`serving.services.checkout.payments` only. None of them holds a card
number, CVC or expiry date: tokenisation keeps brand, last four digits and the test outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class Payment(Base):
    """The shop's view of an order's payment (one per order)."""

    __tablename__ = "payments"

    order_id: Mapped[str] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(20))
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    intent_id: Mapped[str | None] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    brand: Mapped[str] = mapped_column(String(20), default="")
    last4: Mapped[str] = mapped_column(String(4), default="")
    decline_code: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookReceipt(Base):
    """Provider events already processed: a replayed event id is acknowledged and ignored."""

    __tablename__ = "webhook_receipts"

    event_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(60))
    received_at: Mapped[datetime]


class SimPaymentMethod(Base):
    __tablename__ = "sim_payment_methods"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    brand: Mapped[str] = mapped_column(String(20))
    last4: Mapped[str] = mapped_column(String(4))
    # What charging this method does in test mode ("succeed", "generic_decline", ...).
    outcome: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]


class SimPaymentIntent(Base):
    __tablename__ = "sim_payment_intents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(30))
    payment_method: Mapped[str | None] = mapped_column(String(40))
    decline_code: Mapped[str | None] = mapped_column(String(40))
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SimRefund(Base):
    __tablename__ = "sim_refunds"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    intent_id: Mapped[str] = mapped_column(
        ForeignKey("sim_payment_intents.id", ondelete="CASCADE"), index=True
    )
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
