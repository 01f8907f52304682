"""The operators' report: admin only, and it degrades piece by piece."""

from __future__ import annotations

from models.registry import ModelRegistry


def test_ops_report_needs_admin(client, customer):
    assert client.get("/api/v1/admin/ops").status_code == 401
    assert customer.get("/api/v1/admin/ops").status_code == 403


def test_ops_report_lists_models_and_survives_missing_parts(app, admin):
    registry = ModelRegistry(app.state.components.settings.data_dir / "registry")

    def write(directory):
        (directory / "weights.txt").write_text("w")

    manifest = registry.publish("als", write, metrics={"ndcg@10": 0.31}, params={"factors": 8})
    version = manifest["version"]
    registry.promote("als", version, force=True)
    r = admin.get("/api/v1/admin/ops")
    assert r.status_code == 200, r.text
    body = r.json()
    als = next(m for m in body["models"] if m["name"] == "als")
    assert als["serving_version"] == version
    assert als["metrics"]["ndcg@10"] == 0.31
    assert body["online_ctr"] is None  # no warehouse yet
    assert body["pipeline_runs"] is None  # no Dagster webserver in tests
    assert body["dagster_url"].startswith("http")


def test_pipeline_runs_show_human_times_job_names_and_triggers():
    from serving.services.infra.ops_report import _run_row

    row = _run_row(
        {
            "runId": "bddae2d6-c56e-4fec-a405-a2e8988b8aeb",
            "jobName": "events_refresh",
            "status": "SUCCESS",
            "startTime": 1796602240.5536,
            "endTime": 1796602300.0536,
            "tags": [
                {"key": "dagster/sensor_name", "value": "closed_segments_sensor"},
                {"key": "dagster/partition", "value": "2026-12-07"},
            ],
        }
    )
    assert row["started"] == "2026-12-07T00:10:40+00:00"
    assert row["ended"] == "2026-12-07T00:11:40+00:00"
    assert row["duration_s"] == 60
    assert row["job"] == "events_refresh"
    assert row["trigger"] == "sensor: closed_segments_sensor"
    assert row["partition"] == "2026-12-07"
    backfill = _run_row(
        {
            "runId": "x" * 36,
            "jobName": "lakehouse_backfill",
            "status": "STARTED",
            "startTime": 1796602240.0,
            "endTime": None,
            "tags": [
                {"key": "storeloop/run", "value": "run_all"},
                {"key": "dagster/asset_partition_range_start", "value": "2026-11-23"},
                {"key": "dagster/asset_partition_range_end", "value": "2026-12-07"},
            ],
        }
    )
    assert backfill["trigger"] == "make run: run_all"
    assert backfill["partition"] == "2026-11-23 … 2026-12-07"
    assert backfill["ended"] is None and backfill["duration_s"] is None
