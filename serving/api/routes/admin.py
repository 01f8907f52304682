"""Operators' endpoints (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from serving.api.deps import AdminUser
from serving.components import components_of
from serving.services.infra import ops_report

router = APIRouter(prefix="/api/v1/admin", tags=["operations"])


@router.get("/ops", responses={401: {}, 403: {}})
async def ops(request: Request, admin: AdminUser) -> dict[str, Any]:
    """Serving model and index versions, offline metrics, online CTR (from the warehouse and
    live from the event stream, with the A/B test) and recent pipeline runs."""
    settings = components_of(request).settings
    registry = settings.registry_path
    models = await run_in_threadpool(ops_report.model_versions, registry)
    index = await run_in_threadpool(ops_report.search_index, registry, settings.search_index_subdir)
    ctr = await run_in_threadpool(ops_report.online_ctr, settings.layout.warehouse)
    runs = await ops_report.pipeline_runs(settings.dagster_url)
    recs = components_of(request).recs
    search = components_of(request).search
    live = await run_in_threadpool(recs.online_report) if recs is not None else None
    return {
        "models": models,
        "recs_serving": recs.status() if recs is not None else None,
        "search_index": {
            **index,
            "loaded_version": _loaded_index(search),
            "ranker_version": getattr(search, "ranker_version", None),
            "state": getattr(search, "state", None),
        },
        "online_ctr": ctr,
        # Live, from the events as they are accepted (no pipeline run needed), and the A/B test.
        "online_live": live,
        "pipeline_runs": runs,
        "dagster_url": settings.dagster_url,
    }


def _loaded_index(search: Any) -> str | None:
    """The index version this process answers searches from (None while none is open)."""
    served = search.served() if search is not None else None
    return served.index_version if served is not None else None
