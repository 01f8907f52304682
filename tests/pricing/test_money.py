"""The integer money rules: half-up rounding, tax inside inclusive prices, started kilograms."""

from __future__ import annotations

import pytest

from serving.services.pricing.money import (
    PPM,
    contained_tax,
    div_half_up,
    share,
    started_kilograms,
)


@pytest.mark.parametrize(
    ("num", "den", "expected"),
    [(0, 7, 0), (4, 10, 0), (5, 10, 1), (15, 10, 2), (25, 10, 3), (24, 10, 2), (6, 4, 2)],
)
def test_half_up_rounds_exact_halves_away_from_zero(num, den, expected):
    # 25 / 10 = 2.5 → 3 (half-even would give 2): the commercial rule tax authorities state.
    assert div_half_up(num, den) == expected


def test_half_up_refuses_negative_or_zero_denominator():
    with pytest.raises(ValueError):
        div_half_up(-1, 2)
    with pytest.raises(ValueError):
        div_half_up(1, 0)


def test_sales_tax_of_8875_ppm_is_exact_on_integers():
    # 8.875 % of $19.99 = 177.41125 cents → 177; basis points could not even hold the rate.
    assert share(1999, 88_750, PPM) == 177
    # 8.875 % of $2.00 = 17.75 cents → 18 (half up)
    assert share(200, 88_750, PPM) == 18


def test_vat_contained_in_inclusive_prices():
    assert contained_tax(11900, 190_000) == 1900  # €119.00 holds €19.00 of 19 % VAT
    assert contained_tax(99, 190_000) == 16  # 0.99 × 0.19 / 1.19 = 0.158 → 0.16
    assert contained_tax(0, 190_000) == 0
    assert contained_tax(1000, 0) == 0


@pytest.mark.parametrize(
    ("grams", "kg"), [(0, 0), (1, 1), (999, 1), (1000, 1), (1001, 2), (25_000, 25)]
)
def test_carriers_bill_started_kilograms(grams, kg):
    assert started_kilograms(grams) == kg


def test_no_float_drift_on_large_amounts():
    # 19 % of €90,071,992,547,409.93: a float product would lose the last cents.
    amount = 9_007_199_254_740_993
    assert share(amount, 190_000, PPM) == (amount * 19 + 50) // 100
