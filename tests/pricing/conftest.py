"""Rate tables of a small international shop (origin DE) for the pricing tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def rates(admin) -> dict:
    """DE and FR VAT (inclusive), US sales tax (exclusive, shipping untaxed), GB VAT with
    duty, shipping to DE, FR and everywhere else, standard and express."""
    for country, body in {
        "DE": {"name": "MwSt", "rate_ppm": 190_000, "mode": "inclusive"},
        "FR": {"name": "TVA", "rate_ppm": 200_000, "mode": "inclusive"},
        "US": {
            "name": "Sales tax",
            "rate_ppm": 88_750,
            "mode": "exclusive",
            "taxes_shipping": False,
        },
        "GB": {"name": "VAT", "rate_ppm": 200_000, "mode": "inclusive"},
    }.items():
        r = admin.client.put(f"/api/v1/admin/tax-rates/{country}", json=body, headers=admin.headers)
        assert r.status_code == 200, r.text
    for country in ("US", "GB"):
        r = admin.client.put(
            f"/api/v1/admin/duty-rates/{country}",
            json={"rate_ppm": 50_000, "de_minimis_minor": 10_000, "currency": "EUR"},
            headers=admin.headers,
        )
        assert r.status_code == 200, r.text
    options = [
        ("DE", "standard", 399, 0, 5000, 2, 3),
        ("DE", "express", 999, 100, None, 1, 1),
        ("*", "standard", 1499, 250, None, 5, 10),
        ("*", "express", 3999, 500, None, 2, 4),
    ]
    for country, speed, base, per_kg, free_from, lo, hi in options:
        r = admin.client.put(
            "/api/v1/admin/shipping-rates",
            json={
                "country": country,
                "speed": speed,
                "currency": "EUR",
                "base_minor": base,
                "per_kg_minor": per_kg,
                "free_from_minor": free_from,
                "min_days": lo,
                "max_days": hi,
            },
            headers=admin.headers,
        )
        assert r.status_code == 200, r.text
    return {}
