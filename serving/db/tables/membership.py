"""The paid membership (monthly, free standard shipping) and every charge made for it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class Membership(Base):
    """One per user: the subscription's state and the period it has paid for."""

    __tablename__ = "memberships"
    __table_args__ = (Index("ix_memberships_status_due", "status", "current_period_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), unique=True)
    plan: Mapped[str] = mapped_column(String(20))
    # active | past_due (renewal failed, retrying inside the grace period) | ended
    status: Mapped[str] = mapped_column(String(16))
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payment_method: Mapped[str] = mapped_column(String(64))
    # Number of the period paid for last (1 = the first month).
    period_no: Mapped[int] = mapped_column(Integer, default=1)
    current_period_start: Mapped[datetime]
    current_period_end: Mapped[datetime]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    # Failed renewal attempts of the current period; next try and the end of the grace period.
    renewal_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_retry_at: Mapped[datetime | None]
    grace_until: Mapped[datetime | None]
    ended_reason: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MembershipCharge(Base):
    """One attempt to charge one period; the provider key is derived from (membership, period,
    attempt), so a retried pass re-finds the same charge instead of making another."""

    __tablename__ = "membership_charges"
    __table_args__ = (UniqueConstraint("membership_id", "period_no", "attempt", name="one_try"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"))
    period_no: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    intent_id: Mapped[str | None] = mapped_column(String(40))
    # succeeded | failed
    status: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    decline_code: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
