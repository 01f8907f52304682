"""money columns 64-bit

Every amount in minor units becomes a BIGINT. At 32 bits, PostgreSQL could not hold an order
of more than about €21 million (the checkout answered an opaque 422); the checkout now caps
an order's total by a setting, and the columns no longer set a lower cap of their own.

SQLite stores every INTEGER column as a 64-bit integer whatever its declared type, so there
is nothing to change there: rebuilding the tables (the only way SQLite alters a column) would
only rename the declared type, at the price of copying every order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 01:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: (table, column) of every amount in minor units.
MONEY_COLUMNS = (
    ("products", "price_minor"),
    ("orders", "subtotal_minor"),
    ("orders", "shipping_minor"),
    ("orders", "total_minor"),
    ("order_lines", "unit_price_minor"),
    ("order_lines", "line_total_minor"),
    ("payments", "amount_minor"),
    ("payments", "refunded_minor"),
    ("sim_payment_intents", "amount_minor"),
    ("sim_payment_intents", "amount_refunded"),
    ("sim_refunds", "amount_minor"),
)


def _retype(new: sa.types.TypeEngine, old: sa.types.TypeEngine) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # already 64-bit (see the module docstring)
    for table, column in MONEY_COLUMNS:
        op.alter_column(table, column, type_=new, existing_type=old, existing_nullable=False)


def upgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer())


def downgrade() -> None:
    # Fails (and changes nothing) if an amount no longer fits 32 bits.
    _retype(sa.Integer(), sa.BigInteger())
