"""Integer money arithmetic: every amount is minor units, every rate an integer fraction.

**Rounding rule: half up** (a remainder of exactly one half rounds away from zero; all
amounts here are non-negative). It is the rule tax authorities state for invoice amounts
(commercial rounding: the EU member states' VAT rules, HMRC, the US states that specify one),
so a shop's receipt matches what the customer computes by hand. Banker's rounding (half even)
exists to cancel the bias of rounding many values that are then summed; the shop avoids that
case instead by rounding **once per order** (see ``quote.py``), not once per line.

No floats anywhere: 19 % of 0.05 is computed as ``5 × 190000 / 1000000`` on integers, so the
same order gives the same cents on every machine and in the warehouse's SQL.
"""

from __future__ import annotations

PPM = 1_000_000  # tax and duty rates: parts per million (8.875 % = 88_750)
BP = 10_000  # promotion percentages: basis points (15 % = 1_500)


def div_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, for ``numerator >= 0, denominator > 0``."""
    if numerator < 0 or denominator <= 0:
        raise ValueError("div_half_up takes a non-negative numerator and a positive denominator")
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (1 if 2 * remainder >= denominator else 0)


def share(amount_minor: int, rate: int, scale: int) -> int:
    """``rate / scale`` of ``amount_minor``, rounded half up (a discount, an exclusive tax,
    a duty)."""
    return div_half_up(amount_minor * rate, scale)


def contained_tax(gross_minor: int, rate_ppm: int) -> int:
    """The tax inside a tax-inclusive ``gross_minor``: gross × r / (1 + r), rounded half up.

    19 % VAT inside €119.00 is €19.00; inside €0.99 it is 0.99 × 0.19 / 1.19 = 0.158 → €0.16.
    """
    return div_half_up(gross_minor * rate_ppm, PPM + rate_ppm)


def started_kilograms(weight_g: int) -> int:
    """Kilograms a carrier bills: every started kilogram counts (1 g → 1, 1000 g → 1,
    1001 g → 2); an empty parcel bills none."""
    return -(-weight_g // 1000) if weight_g > 0 else 0
