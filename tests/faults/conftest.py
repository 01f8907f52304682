"""Fault drills reuse the checkout fixtures (a product with stock)."""

from __future__ import annotations

from tests.checkout.conftest import make_product  # noqa: F401  (fixture, re-exported)
