"""Third-party sellers: who sells which product, their parcels per order, and the payout ledger.

A product with no ``seller_products`` row is the platform's own (first party). Ownership lives
in its own table rather than a column on ``products`` so the catalog's hot paths (bulk loads,
the checkout's price read) stay as they are, and an ownership change is one row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class Seller(Base):
    """A seller account: a user with the ``seller`` role and the platform's commission rate."""

    __tablename__ = "sellers"
    __table_args__ = (
        CheckConstraint("commission_bps BETWEEN 0 AND 10000", name="commission_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # Commission in basis points of each sold line (1000 = 10 %), kept by the platform.
    commission_bps: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SellerProduct(Base):
    """Which seller a product belongs to (absent: the platform's own product)."""

    __tablename__ = "seller_products"

    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    seller_id: Mapped[int] = mapped_column(
        ForeignKey("sellers.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime]


class SellerShipment(Base):
    """One seller's parcel of one order: an order of three sellers ships as three parcels."""

    __tablename__ = "seller_shipments"
    __table_args__ = (
        # A retried fulfilment pass can never open a second parcel for the same seller.
        UniqueConstraint("order_id", "seller_id", name="one_parcel_per_seller"),
        Index("ix_seller_shipments_seller", "seller_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id", ondelete="RESTRICT"))
    carrier: Mapped[str] = mapped_column(String(40))
    tracking_number: Mapped[str] = mapped_column(String(40), unique=True)
    # label_created | shipped | delivered | cancelled
    status: Mapped[str] = mapped_column(String(20))
    units: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SellerLedgerEntry(Base):
    """Append-only: what the platform owes each seller is the sum of ``amount_minor``.

    Positive amounts are owed to the seller (a sale, a returned commission, a dispute won);
    negative ones reduce it (commission, a refund, a dispute hold, a payout). ``ref`` is unique
    and derived from what caused the entry, so any pass may be retried without booking twice.
    """

    __tablename__ = "seller_ledger"
    __table_args__ = (Index("ix_seller_ledger_seller", "seller_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("sellers.id", ondelete="RESTRICT"))
    order_id: Mapped[str | None] = mapped_column(String(40), index=True)
    # sale | commission | refund | commission_refund | dispute_hold | dispute_release |
    # payout
    kind: Mapped[str] = mapped_column(String(24))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    ref: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
