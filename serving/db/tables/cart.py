"""Cart lines, keyed by owner: ``u:<user id>`` for accounts, ``s:<session id>`` for guests.

One table for both kinds of owner keeps the login merge a pair of plain statements; prices are
not stored here because a cart always shows current prices (the order fixes them).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class CartItem(Base):
    __tablename__ = "cart_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    owner_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime]
    updated_at: Mapped[datetime]
