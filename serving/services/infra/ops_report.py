"""What the operators' page shows: serving model and index versions, their offline metrics,
online CTR per model version, and recent pipeline runs.

Each part is read from where it lives (the registry's manifests, the warehouse, the Dagster
webserver) and degrades to "unavailable" on its own, so one missing piece never hides the rest.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
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
            info.update({k: data.get(k) for k in ("doc_count", "built_at")})
            info["created_at"] = data.get("created_at") or data.get("built_at")
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
    return [_run_row(r) for r in data["results"]]


#: What started a run, from Dagster's own tags (first match wins).
_TRIGGERS = (
    ("dagster/schedule_name", "schedule"),
    ("dagster/sensor_name", "sensor"),
    ("dagster/backfill", "backfill"),
    ("storeloop/run", "make run"),
)


def _iso(epoch: float | None) -> str | None:
    """Dagster's epoch seconds as ISO 8601 UTC (the page shows them in the reader's time)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(float(epoch), UTC).isoformat(timespec="seconds")


def _run_row(run: dict[str, Any]) -> dict[str, Any]:
    """One run as the page shows it: job name, trigger, status, human times, duration."""
    tags = {t["key"]: t["value"] for t in run.get("tags") or ()}
    trigger = next(
        (f"{label}: {tags[key]}" for key, label in _TRIGGERS if key in tags), "launched by hand"
    )
    start, end = run.get("startTime"), run.get("endTime")
    partition = tags.get("dagster/partition") or (
        f"{tags['dagster/asset_partition_range_start']} … "
        f"{tags['dagster/asset_partition_range_end']}"
        if "dagster/asset_partition_range_start" in tags
        else None
    )
    return {
        "job": run["jobName"],
        "trigger": trigger,
        "status": run["status"],
        "partition": partition,
        "started": _iso(start),
        "ended": _iso(end),
        "duration_s": round(float(end) - float(start)) if start and end else None,
        "run_id": run["runId"][:8],
    }
