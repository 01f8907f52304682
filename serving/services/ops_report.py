"""What the operators' page shows: serving model and index versions, their offline metrics,
online CTR per model version, and recent pipeline runs.

Each part is read from where it lives (the registry's manifests, the warehouse, the Dagster
webserver) and degrades to "unavailable" on its own, so one missing piece never hides the rest.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx

from models.registry import ModelRegistry
from models.search.index_store import IndexStore

log = logging.getLogger("storeloop.ops")

_RUNS_QUERY = """
query { runsOrError(limit: 10) { __typename ... on Runs { results {
  runId status jobName startTime endTime tags { key value } } } } }
"""


def model_versions(registry_root: Path) -> list[dict[str, Any]]:
    """Every recommendation model with its serving version, history and offline metrics."""
    registry = ModelRegistry(registry_root)
    models = []
    for name in registry.names():
        serving = registry.serving_version(name)
        manifest: dict[str, Any] = {}
        if serving:
            try:
                manifest = registry.manifest(name, serving)
            except Exception:  # a broken manifest is reported, not raised
                manifest = {"error": "manifest unreadable"}
        models.append(
            {
                "name": name,
                "serving_version": serving,
                "versions": registry.versions(name)[-5:],
                "metrics": manifest.get("metrics", {}),
                "created_at": manifest.get("created_at"),
                "data_range": manifest.get("data_range"),
            }
        )
    return models


def search_index(registry_root: Path, subdir: str) -> dict[str, Any]:
    store = IndexStore(registry_root / subdir)
    current = store.current()
    info: dict[str, Any] = {"serving_version": current, "versions": store.versions()[-5:]}
    if current:
        manifest = store.path(current) / "manifest.json"
        if manifest.exists():
            import json

            data = json.loads(manifest.read_text())
            info.update({k: data.get(k) for k in ("doc_count", "built_at", "created_at")})
    return info


def online_ctr(warehouse_path: Path) -> list[dict[str, Any]] | None:
    """Impressions, clicks and CTR per model version from the warehouse (None if unreadable)."""
    if not warehouse_path.exists():
        return None
    try:
        import duckdb

        with duckdb.connect(str(warehouse_path), read_only=True) as conn:
            rows = conn.execute(
                "SELECT coalesce(model_version, 'unknown'), count(*), "
                "sum(CASE WHEN clicked THEN 1 ELSE 0 END) FROM fact_rec_impression "
                "GROUP BY 1 ORDER BY 2 DESC LIMIT 20"
            ).fetchall()
    except Exception as exc:  # busy (a pipeline is writing) or not built yet
        log.info("warehouse not readable for the ops page: %s", exc)
        return None
    return [
        {
            "model_version": version,
            "impressions": int(shown),
            "clicks": int(clicked or 0),
            "ctr": round((clicked or 0) / shown, 4) if shown else 0.0,
        }
        for version, shown, clicked in rows
    ]


async def pipeline_runs(dagster_url: str) -> list[dict[str, Any]] | None:
    """The latest runs from the Dagster webserver's GraphQL API (None when it is not up)."""
    try:
        async with httpx.AsyncClient(timeout=1.5) as client:
            response = await client.post(
                dagster_url.rstrip("/") + "/graphql", json={"query": _RUNS_QUERY}
            )
        data = response.json()["data"]["runsOrError"]
    except Exception:
        return None
    if data.get("__typename") != "Runs":
        return None
    return [
        {
            "run_id": r["runId"],
            "status": r["status"],
            "job": r["jobName"],
            "started": r.get("startTime"),
            "ended": r.get("endTime"),
        }
        for r in data["results"]
    ]
