"""pricing, promotions, addresses and wishlists (issue 23)

Shipping, tax and duty rate tables, product weights, promotions with their usage counters and
redemptions, the charges fixed on each order, the address book and the wishlist. New tables
only: no existing row changes, so the downgrade drops them and nothing else.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 04:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shipping_rates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("speed", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("base_minor", sa.BigInteger(), nullable=False),
        sa.Column("per_kg_minor", sa.BigInteger(), nullable=False),
        sa.Column("free_from_minor", sa.BigInteger(), nullable=True),
        sa.Column("max_weight_g", sa.Integer(), nullable=True),
        sa.Column("min_days", sa.Integer(), nullable=False),
        sa.Column("max_days", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "base_minor >= 0 AND per_kg_minor >= 0",
            name=op.f("ck_shipping_rates_price_non_negative"),
        ),
        sa.CheckConstraint(
            "min_days >= 0 AND max_days >= min_days", name=op.f("ck_shipping_rates_days_ordered")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipping_rates")),
        sa.UniqueConstraint(
            "country", "speed", "currency", name=op.f("uq_shipping_rates_country_speed_currency")
        ),
    )
    op.create_table(
        "tax_rates",
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("rate_ppm", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("taxes_shipping", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "rate_ppm >= 0 AND rate_ppm <= 1000000", name=op.f("ck_tax_rates_rate_range")
        ),
        sa.CheckConstraint(
            "mode IN ('inclusive', 'exclusive')", name=op.f("ck_tax_rates_mode_known")
        ),
        sa.PrimaryKeyConstraint("country", name=op.f("pk_tax_rates")),
    )
    op.create_table(
        "duty_rates",
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("rate_ppm", sa.Integer(), nullable=False),
        sa.Column("de_minimis_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "rate_ppm >= 0 AND rate_ppm <= 1000000", name=op.f("ck_duty_rates_rate_range")
        ),
        sa.PrimaryKeyConstraint("country", name=op.f("pk_duty_rates")),
    )
    op.create_table(
        "product_weights",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("weight_g", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("weight_g > 0", name=op.f("ck_product_weights_weight_positive")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_product_weights_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_weights")),
    )
    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("percent_bp", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("min_subtotal_minor", sa.BigInteger(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("starts_at", TS, nullable=True),
        sa.Column("ends_at", TS, nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("max_uses_per_customer", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(
            "kind IN ('percent', 'fixed', 'free_shipping')", name=op.f("ck_promotions_kind_known")
        ),
        sa.CheckConstraint(
            "percent_bp >= 0 AND percent_bp <= 10000", name=op.f("ck_promotions_percent_range")
        ),
        sa.CheckConstraint(
            "amount_minor >= 0 AND min_subtotal_minor >= 0", name=op.f("ck_promotions_amounts")
        ),
        sa.CheckConstraint(
            "max_uses IS NULL OR uses <= max_uses", name=op.f("ck_promotions_uses_within_limit")
        ),
        sa.CheckConstraint("uses >= 0", name=op.f("ck_promotions_uses_non_negative")),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_promotions_category_id_categories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
        sa.UniqueConstraint("code", name=op.f("uq_promotions_code")),
    )
    op.create_index("ix_promotions_automatic", "promotions", ["active", "category_id"])
    op.create_table(
        "promotion_usage",
        sa.Column("promotion_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.CheckConstraint("uses >= 0", name=op.f("ck_promotion_usage_uses_non_negative")),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_promotion_usage_promotion_id_promotions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_promotion_usage_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("promotion_id", "user_id", name=op.f("pk_promotion_usage")),
    )
    op.create_table(
        "promotion_redemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("promotion_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=True),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_promotion_redemptions_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_promotion_redemptions_promotion_id_promotions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_promotion_redemptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_redemptions")),
        sa.UniqueConstraint(
            "order_id", "promotion_id", name=op.f("uq_promotion_redemptions_order_promotion")
        ),
    )
    op.create_index("ix_promotion_redemptions_updated", "promotion_redemptions", ["updated_at"])
    op.create_table(
        "order_charges",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("shipping_speed", sa.String(length=20), nullable=False),
        sa.Column("goods_minor", sa.BigInteger(), nullable=False),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("shipping_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_mode", sa.String(length=10), nullable=False),
        sa.Column("tax_rate_ppm", sa.Integer(), nullable=False),
        sa.Column("duty_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("breakdown", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_charges_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_charges")),
    )
    op.create_table(
        "addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("line1", sa.String(length=200), nullable=False),
        sa.Column("line2", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("postal_code", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_addresses_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addresses")),
    )
    op.create_index("ix_addresses_user", "addresses", ["user_id", "id"])
    op.create_index(
        "uq_addresses_default",
        "addresses",
        ["user_id"],
        unique=True,
        sqlite_where=sa.text("is_default"),
        postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "wishlist_items",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("added_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_wishlist_items_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_wishlist_items_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "product_id", name=op.f("pk_wishlist_items")),
    )
    op.create_index("ix_wishlist_items_user_added", "wishlist_items", ["user_id", "added_at"])


def downgrade() -> None:
    for table in (
        "wishlist_items",
        "addresses",
        "order_charges",
        "promotion_redemptions",
        "promotion_usage",
        "promotions",
        "product_weights",
        "duty_rates",
        "tax_rates",
        "shipping_rates",
    ):
        op.drop_table(table)
