"""Rate tables and a coupon for the checkout benchmark's priced variants (issue 23).

A fresh shop has empty rate tables: every order pays the flat fallback shipping and no tax.
Issue 23's target is the same 300 orders/s with "shipping, tax and one coupon on every order",
so these variants write, before the server starts, what a shop that sells to Portugal would
have: a weight-priced standard option, VAT included in the prices, every product's weight and,
for ``coupon``, one code every order enters (10 % off, no usage limits: a site-wide sale code,
so every order takes a use of the same promotion row).
"""

from __future__ import annotations

from datetime import UTC, datetime

from devtools.shop_db import ADDRESS, Shop
from serving.services.pricing import promotions, rates

#: The variants ``bench_checkout --pricing`` knows.
VARIANTS = ("flat", "rates", "coupon")
COUPON = "BENCH10"


def seed_pricing(shop: Shop, product_ids: list[int], variant: str) -> dict:
    """Write the variant's rate tables (and coupon); returns what an order body adds."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown pricing variant {variant!r}; one of {VARIANTS}")
    if variant == "flat":
        return {}
    country = ADDRESS["country"]
    with shop.db.session(write=True) as s:
        rates.put_shipping_rate(
            s,
            country=country,
            speed="standard",
            currency="EUR",
            values={
                "base_minor": 390,
                "per_kg_minor": 120,
                "free_from_minor": None,
                "max_weight_g": None,
                "min_days": 2,
                "max_days": 4,
            },
        )
        rates.put_tax_rate(s, country, {"name": "IVA", "rate_ppm": 230_000, "mode": "inclusive"})
        for i, pid in enumerate(product_ids):
            rates.set_weight(s, pid, 250 + (i % 7) * 400)
        if variant == "coupon":
            promotions.create_promotion(
                s,
                {
                    "code": COUPON,
                    "name": "Bench sale",
                    "kind": "percent",
                    "percent_bp": 1000,
                    "currency": "EUR",
                },
                datetime.now(UTC),
            )
        s.commit()
    return {"coupon_code": COUPON} if variant == "coupon" else {}
