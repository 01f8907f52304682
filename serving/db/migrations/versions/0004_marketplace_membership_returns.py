"""marketplace, membership, returns and disputes

Sellers and their products, per-seller parcels and the payout ledger; the paid membership and
its charges; return requests and their lines; disputes (the shop's) and ``sim_disputes`` (the
simulated provider's). New tables only: nothing existing changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sellers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("commission_bps", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "commission_bps BETWEEN 0 AND 10000", name=op.f("ck_sellers_commission_range")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sellers_user_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sellers")),
        sa.UniqueConstraint("user_id", name=op.f("uq_sellers_user_id")),
    )
    op.create_table(
        "seller_products",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("seller_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_seller_products_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"],
            ["sellers.id"],
            name=op.f("fk_seller_products_seller_id_sellers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_seller_products")),
    )
    op.create_index(
        op.f("ix_seller_products_seller_id"), "seller_products", ["seller_id"], unique=False
    )
    op.create_table(
        "seller_shipments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("seller_id", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=40), nullable=False),
        sa.Column("tracking_number", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_seller_shipments_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"],
            ["sellers.id"],
            name=op.f("fk_seller_shipments_seller_id_sellers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seller_shipments")),
        sa.UniqueConstraint("order_id", "seller_id", name="one_parcel_per_seller"),
        sa.UniqueConstraint("tracking_number", name=op.f("uq_seller_shipments_tracking_number")),
    )
    op.create_index("ix_seller_shipments_seller", "seller_shipments", ["seller_id", "id"])
    op.create_table(
        "seller_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seller_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("ref", sa.String(length=120), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["seller_id"],
            ["sellers.id"],
            name=op.f("fk_seller_ledger_seller_id_sellers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seller_ledger")),
        sa.UniqueConstraint("ref", name=op.f("uq_seller_ledger_ref")),
    )
    op.create_index("ix_seller_ledger_seller", "seller_ledger", ["seller_id", "id"])
    op.create_index(op.f("ix_seller_ledger_order_id"), "seller_ledger", ["order_id"])
    op.create_index(op.f("ix_seller_ledger_created_at"), "seller_ledger", ["created_at"])

    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("plan", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payment_method", sa.String(length=64), nullable=False),
        sa.Column("period_no", sa.Integer(), nullable=False),
        sa.Column("current_period_start", TS, nullable=False),
        sa.Column("current_period_end", TS, nullable=False),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("renewal_failures", sa.Integer(), nullable=False),
        sa.Column("next_retry_at", TS, nullable=True),
        sa.Column("grace_until", TS, nullable=True),
        sa.Column("ended_reason", sa.String(length=40), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_memberships_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint("user_id", name=op.f("uq_memberships_user_id")),
    )
    op.create_index("ix_memberships_status_due", "memberships", ["status", "current_period_end"])
    op.create_table(
        "membership_charges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("period_no", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("decline_code", sa.String(length=40), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["memberships.id"],
            name=op.f("fk_membership_charges_membership_id_memberships"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_membership_charges")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_membership_charges_idempotency_key")),
        sa.UniqueConstraint(
            "membership_id",
            "period_no",
            "attempt",
            name="one_try",
        ),
    )

    op.create_table(
        "returns",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_returns_order_id_orders"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_returns_user_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returns")),
    )
    op.create_index(op.f("ix_returns_order_id"), "returns", ["order_id"])
    op.create_index("ix_returns_user_created", "returns", ["user_id", "created_at"])
    op.create_table(
        "return_lines",
        sa.Column("return_id", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("disposition", sa.String(length=16), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_return_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["returns.id"],
            name=op.f("fk_return_lines_return_id_returns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_return_lines_product_id_products"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("return_id", "product_id", name=op.f("pk_return_lines")),
    )
    op.create_table(
        "disputes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_disputes_order_id_orders"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disputes")),
    )
    op.create_index(op.f("ix_disputes_order_id"), "disputes", ["order_id"])
    op.create_table(
        "sim_disputes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["intent_id"],
            ["sim_payment_intents.id"],
            name=op.f("fk_sim_disputes_intent_id_sim_payment_intents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sim_disputes")),
    )
    op.create_index(op.f("ix_sim_disputes_intent_id"), "sim_disputes", ["intent_id"])


def downgrade() -> None:
    for table in (
        "sim_disputes",
        "disputes",
        "return_lines",
        "returns",
        "membership_charges",
        "memberships",
        "seller_ledger",
        "seller_shipments",
        "seller_products",
        "sellers",
    ):
        op.drop_table(table)
