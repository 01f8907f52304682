"""The two-host drill (``scripts/drill_two_hosts.py``) on a small shop, as CI runs it.

Two ``storeloop serve`` processes with their own DATA_DIRs share PostgreSQL, Redis, the NATS
stream and the registry; one is SIGKILLed mid-traffic and restarted; the pipeline (Dagster on
PostgreSQL) lands the stream, retrains and publishes; both hosts must serve the new version,
every acknowledged event must be in the lake exactly once and no request may fail meanwhile.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]


def test_two_hosts_drill_passes(nats_url: str, pg_schema_url: str, tmp_path: Path) -> None:
    del pg_schema_url  # only proves PostgreSQL answers; the drill makes its own schemas
    spec = importlib.util.spec_from_file_location("drill", ROOT / "scripts/drill_two_hosts.py")
    assert spec and spec.loader
    drill = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(drill)
    out = tmp_path / "drill.json"
    code = drill.main(
        [
            "--users",
            "200",
            "--products",
            "150",
            "--days",
            "5",
            "--traffic-seconds",
            "12",
            "--swap-bound",
            "60",
            "--json",
            str(out),
        ]
    )
    result = json.loads(out.read_text())
    assert result["acknowledged_missing_from_lake"] == 0
    assert result["lake_rows_duplicated"] == 0
    assert result["recs_failures_during_pipeline"] == 0
    assert result["both_hosts_on_new_version_after_publication_s"] is not None
    recon = result["reconciliation"]
    assert recon["products_whose_stock_differs_from_movements"] == 0
    assert recon["orders_in_database"] == recon["orders_in_lake"] > 0
    assert code == 0, result
