"""compute_quote: the steps and their rounding, on hand-checked figures (no database)."""

from __future__ import annotations

import pytest

from serving.services.pricing.quote import (
    NO_TAX,
    Duty,
    Line,
    PricingError,
    Promo,
    ShippingOption,
    Tax,
    compute_quote,
)

STANDARD = ShippingOption("standard", 499, 100, 5000, 30_000, 2, 5)
EXPRESS = ShippingOption("express", 1299, 200, None, 20_000, 1, 1)
VAT = Tax("VAT", 190_000, "inclusive", True)
SALES = Tax("Sales tax", 88_750, "exclusive", False)


def line(pid=1, qty=1, price=1000, path="electronics/audio", weight=500) -> Line:
    return Line(pid, f"P{pid}", qty, price, path, weight)


def promo(pid=1, *, code="SAVE", kind="percent", bp=0, amount=0, min_spend=0, path=None):
    return Promo(pid, code, f"promo {pid}", kind, bp, amount, "EUR", min_spend, path)


def quote(lines, **kw):
    args = {
        "currency": "EUR",
        "country": "DE",
        "speed": None,
        "options": [STANDARD, EXPRESS],
        "tax": NO_TAX,
        "duty": None,
        "coupon": None,
        "automatic": [],
    }
    args.update(kw)
    return compute_quote(lines=lines, **args)


def test_inclusive_vat_does_not_change_the_total_and_covers_shipping():
    q = quote([line(qty=2, price=1190)], tax=VAT)  # 1 kg: standard 499 + 1 × 100
    assert q.goods_minor == 2380
    assert q.shipping_minor == 599
    assert q.tax_minor == 476  # (2380 + 599) × 0.19 / 1.19 = 475.6 → 476
    assert q.total_minor == 2380 + 599
    assert q.tax["included"] is True


def test_exclusive_sales_tax_is_added_on_top_and_skips_untaxed_shipping():
    q = quote([line(qty=1, price=1999, weight=1200)], tax=SALES)  # 2 started kg
    assert q.shipping_minor == 499 + 2 * 100
    assert q.tax_minor == 177  # 1999 × 0.08875 = 177.41 → 177, shipping not taxed
    assert q.total_minor == 1999 + 699 + 177


def test_tax_is_rounded_once_per_order_not_per_line():
    # Three lines of 0.99 at 19 % inclusive: per line 0.158 → 0.16 each = 0.48;
    # once per order 2.97 × 0.19 / 1.19 = 0.474 → 0.47, the same as one line of 3 × 0.99.
    goods_only = Tax("VAT", 190_000, "inclusive", False)
    three_lines = quote([line(pid=i, price=99, weight=1) for i in (1, 2, 3)], tax=goods_only)
    one_line = quote([line(qty=3, price=99, weight=1)], tax=goods_only)
    assert three_lines.tax_minor == one_line.tax_minor == 47


def test_cheapest_option_by_default_and_speed_on_request():
    q = quote([line()])
    assert [o["speed"] for o in q.shipping_options] == ["standard", "express"]
    assert q.shipping_speed == "standard"
    q = quote([line()], speed="express")
    assert (q.shipping_speed, q.shipping_minor) == ("express", 1299 + 200)
    with pytest.raises(PricingError) as err:
        quote([line()], speed="overnight")
    assert err.value.code == "shipping_speed_unavailable"


def test_free_shipping_threshold_is_measured_after_discounts():
    assert quote([line(price=5000)]).shipping_minor == 0
    q = quote([line(price=5000)], coupon=promo(bp=1000))  # 10 % off → 4500 < 5000
    assert q.discount_minor == 500
    assert q.shipping_minor == 599


def test_heavy_parcels_lose_the_options_that_cannot_carry_them():
    q = quote([line(weight=25_000)])
    assert [o["speed"] for o in q.shipping_options] == ["standard"]
    with pytest.raises(PricingError) as err:
        quote([line(weight=31_000)])
    assert err.value.code == "no_shipping_option"
    assert err.value.status == 422


def test_coupon_percent_fixed_and_free_shipping():
    assert quote([line(price=3333)], coupon=promo(bp=1500)).discount_minor == 500  # 499.95
    q = quote([line(price=1000)], coupon=promo(kind="fixed", amount=2500))
    assert q.discount_minor == 1000  # never more than the goods
    assert q.total_minor == 0 + q.shipping_minor
    q = quote([line(price=1000)], coupon=promo(kind="free_shipping"), speed="express")
    assert q.shipping_minor == 0
    assert q.discounts[-1]["discount_minor"] == 1499  # what the coupon waived
    assert q.total_minor == 1000


def test_coupon_minimum_spend_and_currency():
    with pytest.raises(PricingError) as err:
        quote([line(price=1000)], coupon=promo(bp=1000, min_spend=2000))
    assert err.value.code == "coupon_min_spend"
    foreign = Promo(9, "USD10", "usd", "fixed", 0, 1000, "USD", 0, None)
    with pytest.raises(PricingError) as err:
        quote([line()], coupon=foreign)
    assert err.value.code == "coupon_currency"


def test_automatic_promotion_by_category_covers_subcategories_best_one_wins():
    audio = promo(1, code=None, bp=1000, path="electronics/audio")
    electronics = promo(2, code=None, bp=500, path="electronics")
    home = promo(3, code=None, bp=5000, path="home")
    lines = [
        line(1, price=1000, path="electronics/audio/headphones"),
        line(2, price=2000, path="electronics/tv"),
        line(3, price=999, path="garden"),
    ]
    q = quote(lines, automatic=[electronics, audio, home])
    assert [ln["discount_minor"] for ln in q.lines] == [100, 100, 0]
    assert {d["promotion_id"]: d["discount_minor"] for d in q.discounts} == {1: 100, 2: 100}
    # a coupon applies after them, and its minimum spend is measured there
    q = quote(lines, automatic=[audio], coupon=promo(9, kind="fixed", amount=300, min_spend=3899))
    assert q.discount_minor == 100 + 300
    with pytest.raises(PricingError):
        quote(lines, automatic=[audio], coupon=promo(9, kind="fixed", amount=300, min_spend=3900))


def test_duty_on_customs_value_without_contained_vat_above_de_minimis():
    duty = Duty(rate_ppm=120_000, de_minimis_minor=15_000)
    gb_vat = Tax("VAT", 200_000, "inclusive", True)
    q = quote([line(price=24_000, weight=100)], tax=gb_vat, duty=duty, country="GB")
    # customs value: 24000 − 24000/6 = 20000 > 15000 → 12 % = 2400
    assert q.customs_value_minor == 20_000
    assert q.duty_minor == 2400
    assert q.total_minor == 24_000 + q.shipping_minor + 2400
    small = quote([line(price=1500, weight=100)], tax=gb_vat, duty=duty, country="GB")
    assert small.duty_minor == 0


def test_totals_always_add_up():
    q = quote(
        [line(1, 3, 1234, weight=700), line(2, 1, 999, path="home")],
        tax=SALES,
        duty=Duty(25_000, 0),
        coupon=promo(bp=750),
        automatic=[promo(5, code=None, bp=333, path="electronics")],
        speed="express",
    )
    assert q.goods_minor - q.discount_minor + q.shipping_minor + q.tax_minor + q.duty_minor == (
        q.total_minor
    )
