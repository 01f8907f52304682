"""The operators' report: admin only, and it degrades piece by piece."""

from __future__ import annotations

from models.registry import ModelRegistry


def test_ops_report_needs_admin(client, customer):
    assert client.get("/api/v1/admin/ops").status_code == 401
    assert customer.get("/api/v1/admin/ops").status_code == 403


def test_ops_report_lists_models_and_survives_missing_parts(app, admin):
    registry = ModelRegistry(app.state.settings.data_dir / "registry")

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
