"""Payment disputes: the shop's view and its evidence (the provider's events arrive through
``POST /api/v1/payments/webhook``, routed to :mod:`serving.services.aftersales.disputes`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from serving.api.deps import AdminUser, SessionDep
from serving.api.schemas.aftersales import DisputeEvidence
from serving.services.aftersales import disputes
from serving.services.aftersales.runtime import aftersales_runtime

router = APIRouter(prefix="/api/v1", tags=["disputes"])
DisputeId = Annotated[str, Path(min_length=1, max_length=40)]


@router.get("/admin/disputes", responses={401: {}, 403: {}})
def list_disputes(
    session: SessionDep,
    admin: AdminUser,
    state: Annotated[
        Literal["needs_response", "under_review", "won", "lost"] | None, Query()
    ] = None,
) -> dict:
    data = disputes.list_disputes(session, state)
    return {"data": data, "count": len(data)}


@router.get("/admin/disputes/{dispute_id}", responses={401: {}, 403: {}, 404: {}})
def get_dispute(dispute_id: DisputeId, session: SessionDep, admin: AdminUser) -> dict:
    return disputes.get_dispute(session, dispute_id)


@router.post(
    "/admin/disputes/{dispute_id}/evidence", responses={401: {}, 403: {}, 404: {}, 409: {}}
)
async def evidence(
    request: Request, dispute_id: DisputeId, body: DisputeEvidence, admin: AdminUser
) -> dict:
    """Answer the dispute once with evidence (it goes to the provider; the bank decides)."""
    rt = aftersales_runtime(request.app)
    return await run_in_threadpool(
        disputes.submit_evidence, rt, dispute_id=dispute_id, evidence=body.evidence
    )
