"""Returns: the customer's requests on their own delivered orders; the shop's authorize,
reject and receive (which refunds through the provider)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from serving.api.deps import AdminUser, CurrentUser, EventsDep, SessionDep
from serving.api.schemas.aftersales import ReturnCreate, ReturnReceive
from serving.services.aftersales import returns
from serving.services.aftersales.runtime import aftersales_runtime

router = APIRouter(prefix="/api/v1", tags=["returns"])
ReturnId = Annotated[str, Path(min_length=1, max_length=40)]
Status = Literal["requested", "authorized", "received", "refunded", "rejected"]


@router.post(
    "/returns",
    status_code=status.HTTP_201_CREATED,
    responses={401: {}, 404: {}, 409: {}, 422: {}},
)
def request_return(
    body: ReturnCreate, session: SessionDep, user: CurrentUser, events: EventsDep
) -> dict:
    """Ask to return some or all units of a delivered order (30 days after delivery)."""
    out = returns.request_return(
        session,
        user_id=user.id,
        order_id=body.order_id,
        lines=[(line.product_id, line.quantity) for line in body.lines],
        reason=body.reason,
    )
    events.emit(
        "return_requested",
        user_id=user.id,
        order_id=body.order_id,
        props={
            "return_id": out["id"],
            "amount_minor": out["amount_minor"],
            "units": sum(line["quantity"] for line in out["lines"]),
        },
    )
    return out


@router.get("/returns", responses={401: {}})
def my_returns(session: SessionDep, user: CurrentUser) -> dict:
    data = returns.list_returns(session, user_id=user.id)
    return {"data": data, "count": len(data)}


@router.get("/returns/{return_id}", responses={401: {}, 404: {}})
def my_return(return_id: ReturnId, session: SessionDep, user: CurrentUser) -> dict:
    return returns.return_dict(session, return_id, user_id=user.id)


@router.get("/admin/returns", responses={401: {}, 403: {}})
def all_returns(
    session: SessionDep, admin: AdminUser, state: Annotated[Status | None, Query()] = None
) -> dict:
    data = returns.list_returns(session, user_id=None, status=state)
    return {"data": data, "count": len(data)}


@router.post("/admin/returns/{return_id}/authorize", responses={401: {}, 403: {}, 404: {}, 409: {}})
def authorize(
    return_id: ReturnId, session: SessionDep, admin: AdminUser, events: EventsDep
) -> dict:
    out = returns.authorize(session, return_id)
    events.emit(
        "return_authorized",
        order_id=out["order_id"],
        user_id=admin.id,
        props={"return_id": return_id},
    )
    return out


@router.post("/admin/returns/{return_id}/reject", responses={401: {}, 403: {}, 404: {}, 409: {}})
def reject(return_id: ReturnId, session: SessionDep, admin: AdminUser, events: EventsDep) -> dict:
    out = returns.reject(session, return_id)
    events.emit(
        "return_rejected",
        order_id=out["order_id"],
        user_id=admin.id,
        props={"return_id": return_id},
    )
    return out


@router.post(
    "/admin/returns/{return_id}/receive", responses={401: {}, 403: {}, 404: {}, 409: {}, 422: {}}
)
async def receive(
    request: Request, return_id: ReturnId, body: ReturnReceive, admin: AdminUser, events: EventsDep
) -> dict:
    """The parcel is back: restock or write off each line, then refund through the provider."""
    rt = aftersales_runtime(request.app)
    out = await run_in_threadpool(
        lambda: returns.receive(
            rt.db,
            rt.provider,
            return_id=return_id,
            dispositions={line.product_id: line.disposition for line in body.lines},
            actor_user_id=admin.id,
        )
    )
    if out["status"] == "refunded":
        events.emit(
            "return_refunded",
            order_id=out["order_id"],
            props={
                "return_id": return_id,
                "refunded_minor": out["refunded_minor"],
                "write_offs": sum(1 for line in out["lines"] if line["disposition"] == "write_off"),
            },
        )
    return out
