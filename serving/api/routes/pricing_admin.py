"""Admin edits of what orders cost: tax, duty and shipping rates, product weights, promotions.

A rate edit applies to quotes and orders from then on; placed orders keep the figures they
were charged (``order_charges``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from fastapi.responses import Response

from serving.api.deps import AdminUser, DatabaseDep
from serving.api.schemas.common import PathId
from serving.api.schemas.pricing import (
    DutyRateIn,
    PromotionIn,
    PromotionPatch,
    PromotionPublic,
    ShippingRateIn,
    TaxRateIn,
    WeightIn,
)
from serving.core.clock import utcnow
from serving.core.errors import Unprocessable
from serving.db.tables import DutyRate, TaxRate
from serving.services.pricing import promotions, rates

router = APIRouter(prefix="/api/v1/admin", tags=["pricing admin"])

CountryPath = Annotated[str, Path(pattern="^[A-Za-z]{2}$")]
_ADMIN = {401: {}, 403: {}}


@router.get("/tax-rates", responses=_ADMIN)
def list_tax_rates(db: DatabaseDep, admin: AdminUser) -> list[dict[str, Any]]:
    with db.session() as session:
        return rates.list_tax_rates(session)


@router.put("/tax-rates/{country}", responses={**_ADMIN, 422: {}})
def put_tax_rate(
    country: CountryPath, body: TaxRateIn, db: DatabaseDep, admin: AdminUser
) -> dict[str, Any]:
    """Create or replace the tax of a destination country."""
    with db.write_gate(), db.transaction() as session:
        return rates.put_tax_rate(session, country.upper(), body.model_dump())


@router.delete("/tax-rates/{country}", status_code=204, responses={**_ADMIN, 404: {}})
def delete_tax_rate(country: CountryPath, db: DatabaseDep, admin: AdminUser) -> Response:
    with db.write_gate(), db.transaction() as session:
        rates.delete_rate(session, TaxRate, country.upper(), "Tax rate")
    return Response(status_code=204)


@router.get("/duty-rates", responses=_ADMIN)
def list_duty_rates(db: DatabaseDep, admin: AdminUser) -> list[dict[str, Any]]:
    with db.session() as session:
        return rates.list_duty_rates(session)


@router.put("/duty-rates/{country}", responses={**_ADMIN, 422: {}})
def put_duty_rate(
    country: CountryPath, body: DutyRateIn, db: DatabaseDep, admin: AdminUser
) -> dict[str, Any]:
    """Create or replace the customs duty on parcels to a country."""
    with db.write_gate(), db.transaction() as session:
        return rates.put_duty_rate(session, country.upper(), body.model_dump())


@router.delete("/duty-rates/{country}", status_code=204, responses={**_ADMIN, 404: {}})
def delete_duty_rate(country: CountryPath, db: DatabaseDep, admin: AdminUser) -> Response:
    with db.write_gate(), db.transaction() as session:
        rates.delete_rate(session, DutyRate, country.upper(), "Duty rate")
    return Response(status_code=204)


@router.get("/shipping-rates", responses=_ADMIN)
def list_shipping_rates(db: DatabaseDep, admin: AdminUser) -> list[dict[str, Any]]:
    with db.session() as session:
        return rates.list_shipping_rates(session)


@router.put("/shipping-rates", responses={**_ADMIN, 422: {}})
def put_shipping_rate(body: ShippingRateIn, db: DatabaseDep, admin: AdminUser) -> dict[str, Any]:
    """Create or replace the option (country, speed, currency); ``*`` is every country
    without a row of its own."""
    if body.max_days < body.min_days:
        raise Unprocessable("max_days must be at least min_days", code="invalid")
    values = body.model_dump(exclude={"country", "speed", "currency"})
    with db.write_gate(), db.transaction() as session:
        return rates.put_shipping_rate(
            session,
            country=body.country.upper(),
            speed=body.speed,
            currency=body.currency,
            values=values,
        )


@router.delete("/shipping-rates/{rate_id}", status_code=204, responses={**_ADMIN, 404: {}})
def delete_shipping_rate(rate_id: PathId, db: DatabaseDep, admin: AdminUser) -> Response:
    with db.write_gate(), db.transaction() as session:
        rates.delete_shipping_rate(session, rate_id)
    return Response(status_code=204)


@router.put("/products/{product_id}/weight", responses={**_ADMIN, 404: {}, 422: {}})
def put_weight(
    product_id: PathId, body: WeightIn, db: DatabaseDep, admin: AdminUser
) -> dict[str, Any]:
    with db.write_gate(), db.transaction() as session:
        return rates.set_weight(session, product_id, body.weight_g)


@router.get("/promotions", response_model=list[PromotionPublic], responses=_ADMIN)
def list_promotions(db: DatabaseDep, admin: AdminUser) -> list[dict[str, Any]]:
    with db.session() as session:
        return promotions.list_promotions(session)


@router.post(
    "/promotions",
    status_code=status.HTTP_201_CREATED,
    response_model=PromotionPublic,
    responses={**_ADMIN, 404: {}, 409: {}, 422: {}},
)
def create_promotion(body: PromotionIn, db: DatabaseDep, admin: AdminUser) -> dict[str, Any]:
    """A coupon (with ``code``) or an automatic promotion (a percentage off a category)."""
    with db.write_gate(), db.transaction() as session:
        return promotions.create_promotion(session, body.model_dump(), utcnow())


@router.get(
    "/promotions/{promotion_id}", response_model=PromotionPublic, responses={**_ADMIN, 404: {}}
)
def get_promotion(promotion_id: PathId, db: DatabaseDep, admin: AdminUser) -> dict[str, Any]:
    with db.session() as session:
        return promotions.get_promotion(session, promotion_id)


#: Columns that cannot be NULL: an explicit null in a PATCH leaves them as they are.
_NOT_NULL = frozenset({"name", "percent_bp", "amount_minor", "min_subtotal_minor", "active"})


@router.patch(
    "/promotions/{promotion_id}",
    response_model=PromotionPublic,
    responses={**_ADMIN, 404: {}, 409: {}, 422: {}},
)
def update_promotion(
    promotion_id: PathId, body: PromotionPatch, db: DatabaseDep, admin: AdminUser
) -> dict[str, Any]:
    """Change a promotion (end it early, raise its limit, switch it off); a null clears
    ``starts_at``, ``ends_at`` and the limits."""
    changes = {
        k: v
        for k, v in body.model_dump(exclude_unset=True).items()
        if not (v is None and k in _NOT_NULL)
    }
    with db.write_gate(), db.transaction() as session:
        return promotions.update_promotion(session, promotion_id, changes, utcnow())
