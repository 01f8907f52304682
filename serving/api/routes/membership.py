"""The caller's membership: status (also what the checkout quote shows), start, change card,
cancel at period end, resume; and the renewal pass for operators."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool

from serving.api.deps import AdminUser, CurrentUser, EventsDep, SessionDep
from serving.api.schemas.aftersales import MembershipStart
from serving.services.aftersales.runtime import aftersales_runtime
from serving.services.membership import subscriptions

router = APIRouter(prefix="/api/v1", tags=["membership"])


@router.get("/membership", responses={401: {}})
def get_membership(session: SessionDep, user: CurrentUser) -> dict:
    """``is_member`` / ``free_standard_shipping`` are what the checkout quote uses."""
    return subscriptions.status_of(session, user.id)


@router.post(
    "/membership", status_code=status.HTTP_201_CREATED, responses={401: {}, 402: {}, 409: {}}
)
async def start_membership(
    request: Request, body: MembershipStart, user: CurrentUser, events: EventsDep
) -> dict:
    """Subscribe and pay the first month now (402 when the card is declined)."""
    rt = aftersales_runtime(request.app)
    facts = await run_in_threadpool(
        subscriptions.subscribe,
        rt.db,
        rt.provider,
        user_id=user.id,
        payment_method=body.payment_method,
    )
    events.emit_many(facts.events)
    return await run_in_threadpool(_status, rt.db, user.id)


def _status(db, user_id: int) -> dict:
    with db.session() as s:
        return subscriptions.status_of(s, user_id)


@router.post("/membership/payment-method", responses={401: {}, 404: {}, 422: {}})
def change_card(request: Request, body: MembershipStart, user: CurrentUser) -> dict:
    rt = aftersales_runtime(request.app)
    subscriptions.change_method(
        rt.db, rt.provider, user_id=user.id, payment_method=body.payment_method
    )
    return _status(rt.db, user.id)


@router.post("/membership/cancel", responses={401: {}, 404: {}})
def cancel(session: SessionDep, user: CurrentUser, events: EventsDep) -> dict:
    """Cancel at the end of the period paid for; the benefits last until then."""
    out = subscriptions.cancel(session, user_id=user.id)
    events.emit("membership_cancel_requested", user_id=user.id, props={"resume": False})
    return out


@router.post("/membership/resume", responses={401: {}, 404: {}})
def resume(session: SessionDep, user: CurrentUser, events: EventsDep) -> dict:
    out = subscriptions.cancel(session, user_id=user.id, resume=True)
    events.emit("membership_cancel_requested", user_id=user.id, props={"resume": True})
    return out


@router.post("/admin/membership/renewals", responses={401: {}, 403: {}})
def run_renewals(request: Request, admin: AdminUser, events: EventsDep) -> dict:
    """Run the renewal pass now (it also runs in the background every 30 s)."""
    rt = aftersales_runtime(request.app)
    facts = subscriptions.run_due(rt.db, rt.provider)
    events.emit_many(facts.events)
    return {"events": len(facts.events)}
