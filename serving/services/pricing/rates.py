"""The rate tables (shipping, tax, duty, weights): their admin edits and the fallback option.

A country's own row wins over the ``*`` row of the same speed. When no shipping rate at all
is configured for an order's currency, the shop offers the one standard option it always had
(``shipping_flat_minor``, free from ``free_shipping_from_minor``), so a fresh install and its
existing orders keep working; once a shop configures rates, a destination they do not reach
gets no option (a 422, before anything is written).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.config import Settings
from serving.core.errors import NotFound
from serving.db.tables import DutyRate, Product, ProductWeight, ShippingRate, TaxRate

from .quote import ShippingOption

ANY_COUNTRY = "*"
FALLBACK_SPEED = "standard"


def fallback_option(settings: Settings) -> ShippingOption:
    return ShippingOption(
        speed=FALLBACK_SPEED,
        base_minor=settings.shipping_flat_minor,
        per_kg_minor=0,
        free_from_minor=settings.free_shipping_from_minor,
        max_weight_g=None,
        min_days=2,
        max_days=5,
    )


# --- admin edits -------------------------------------------------------------------------


def _row_dict(row: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    out = {c: getattr(row, c) for c in columns}
    if "updated_at" in out:
        out["updated_at"] = out["updated_at"].isoformat()
    return out


TAX_COLUMNS = ("country", "name", "rate_ppm", "mode", "taxes_shipping", "updated_at")
DUTY_COLUMNS = ("country", "rate_ppm", "de_minimis_minor", "currency", "updated_at")
SHIPPING_COLUMNS = (
    "id",
    "country",
    "speed",
    "currency",
    "base_minor",
    "per_kg_minor",
    "free_from_minor",
    "max_weight_g",
    "min_days",
    "max_days",
    "active",
    "updated_at",
)


def _list_by_country(session: Session, table: type, columns: tuple[str, ...]) -> list[dict]:
    rows = session.execute(select(table).order_by(table.country)).scalars()
    return [_row_dict(r, columns) for r in rows]


def _put_by_country(
    session: Session, table: type, columns: tuple[str, ...], country: str, values: dict[str, Any]
) -> dict[str, Any]:
    """Insert or update one country's row of a rates table (tax and duty share the shape)."""
    row = session.get(table, country)
    if row is None:
        row = table(country=country, **values, updated_at=utcnow())
        session.add(row)
    else:
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
    session.flush()
    return _row_dict(row, columns)


def list_tax_rates(session: Session) -> list[dict[str, Any]]:
    return _list_by_country(session, TaxRate, TAX_COLUMNS)


def put_tax_rate(session: Session, country: str, values: dict[str, Any]) -> dict[str, Any]:
    return _put_by_country(session, TaxRate, TAX_COLUMNS, country, values)


def list_duty_rates(session: Session) -> list[dict[str, Any]]:
    return _list_by_country(session, DutyRate, DUTY_COLUMNS)


def put_duty_rate(session: Session, country: str, values: dict[str, Any]) -> dict[str, Any]:
    return _put_by_country(session, DutyRate, DUTY_COLUMNS, country, values)


def delete_rate(session: Session, table: type, country: str, what: str) -> None:
    if session.execute(delete(table).where(table.country == country)).rowcount == 0:
        raise NotFound(what, country)


def list_shipping_rates(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ShippingRate).order_by(ShippingRate.country, ShippingRate.currency, ShippingRate.id)
    ).scalars()
    return [_row_dict(r, SHIPPING_COLUMNS) for r in rows]


def put_shipping_rate(
    session: Session, *, country: str, speed: str, currency: str, values: dict[str, Any]
) -> dict[str, Any]:
    """Create or replace the option (country, speed, currency)."""
    row = session.execute(
        select(ShippingRate).where(
            ShippingRate.country == country,
            ShippingRate.speed == speed,
            ShippingRate.currency == currency,
        )
    ).scalar_one_or_none()
    if row is None:
        row = ShippingRate(
            country=country, speed=speed, currency=currency, **values, updated_at=utcnow()
        )
        session.add(row)
    else:
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
    session.flush()
    return _row_dict(row, SHIPPING_COLUMNS)


def delete_shipping_rate(session: Session, rate_id: int) -> None:
    if session.execute(delete(ShippingRate).where(ShippingRate.id == rate_id)).rowcount == 0:
        raise NotFound("Shipping rate", rate_id)


def set_weight(session: Session, product_id: int, weight_g: int) -> dict[str, Any]:
    if session.get(Product, product_id) is None:
        raise NotFound("Product", product_id)
    row = session.get(ProductWeight, product_id)
    if row is None:
        session.add(ProductWeight(product_id=product_id, weight_g=weight_g, updated_at=utcnow()))
    else:
        row.weight_g = weight_g
        row.updated_at = utcnow()
    session.flush()
    return {"product_id": product_id, "weight_g": weight_g}
