"""Operators' endpoints (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from serving.api.deps import AdminUser
from serving.services import ops_report

router = APIRouter(prefix="/api/v1/admin", tags=["operations"])


@router.get("/ops", responses={401: {}, 403: {}})
async def ops(request: Request, admin: AdminUser) -> dict[str, Any]:
    """Serving model and index versions, offline metrics, online CTR and recent pipeline runs."""
    settings = request.app.state.settings
    registry = settings.data_dir / "registry"
    models = await run_in_threadpool(ops_report.model_versions, registry)
    index = await run_in_threadpool(ops_report.search_index, registry, settings.search_index_subdir)
    ctr = await run_in_threadpool(ops_report.online_ctr, settings.data_dir / "warehouse.duckdb")
    runs = await ops_report.pipeline_runs(settings.dagster_url)
    recs = getattr(request.app.state, "recs_serving", None)
    search = getattr(request.app.state, "search_serving", None)
    return {
        "models": models,
        "recs_serving": recs.status() if recs is not None else None,
        "search_index": {
            **index,
            "loaded_version": getattr(search, "version", None),
            "ranker_version": getattr(search, "ranker_version", None),
            "state": getattr(search, "state", None),
        },
        "online_ctr": ctr,
        "pipeline_runs": runs,
        "dagster_url": settings.dagster_url,
    }
