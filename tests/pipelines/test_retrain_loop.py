"""The demo retrains by itself: live shoppers' events reach the lake through the closed-segment
sensor, the refresh job retrains, gates and promotes a model, and the running shop serves it.

End to end on a small simulated shop: history (in-process shoppers), the first pipeline run
(`pipelines.run_all`, as `make run` does), a real shop server with live shoppers and a short
segment interval, the sensor's own evaluation, the `events_refresh` job it starts, and the
shop's ops report until it names the new model version.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import pytest

from devtools.demo_shop import live_server
from devtools.server import ROOT as REPO
from devtools.waits import scaled
from features.events import list_closed_segments
from features.lake import extracted_at
from models.registry import ModelRegistry
from pipelines.automation import closed_segments_sensor
from pipelines.definitions import build_definitions
from pipelines.resources import EventLogDir, LakeDir

ADMIN = ("ops@example.com", "ops-password-123")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


def test_sensor_refresh_retrains_promotes_and_the_shop_serves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'storeloop.db'}"
    home = tmp_path / "dagster"
    home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JWT_SECRET")},
        "DATA_DIR": str(data),
        "DAGSTER_HOME": str(home),
        "STORELOOP_ADMIN_PASSWORD": ADMIN[1],
        "OPENBLAS_NUM_THREADS": "1",
    }
    days = 6
    start = (datetime.now(UTC) - timedelta(days=days)).date().isoformat()
    _run(["-m", "serving", "migrate"], env)
    _run(["-m", "serving", "create-admin", "--email", ADMIN[0]], env)
    _run(
        ["-m", "serving", "simulate", "--seed", "7", "--users", "400", "--products", "300"]
        + ["--days", str(days), "--start", start, "--target", "inprocess", "--quiet"],
        env,
    )
    _run(["-m", "pipelines.run_all"], env)
    registry = ModelRegistry(data / "registry", kind="recs")
    first = registry.serving_version("als")
    assert first, "the first run promoted no model: the history is too small for the gate"
    today = datetime.now(UTC).date().isoformat()
    extracted = extracted_at(data / "lake", "events", today)

    with live_server(
        data_dir=data,
        database_url=url,
        jwt_secret=(data / "jwt_secret").read_text().strip(),
        env={"STORELOOP_EVENT_SEGMENT_MAX_SECONDS": "3"},
    ) as server:
        token = httpx.post(
            f"{server.url}/api/v1/auth/token",
            data={"username": ADMIN[0], "password": ADMIN[1]},
            timeout=10,
        ).json()["access_token"]

        def serving_label() -> str:
            report = httpx.get(
                f"{server.url}/api/v1/admin/ops",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            ).json()
            return (report.get("recs_serving") or {}).get("model_version", "")

        assert serving_label() == f"als:{first}"
        shoppers = subprocess.Popen(
            [sys.executable, "-m", "serving", "simulate", "live", "--target", server.url]
            + ["--shoppers", "6", "--think", "0.2", "--users", "400", "--products", "300"]
            + ["--admin-email", ADMIN[0], "--admin-password", ADMIN[1]],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # New events in segments that closed after the first run read today's events.
            deadline = time.monotonic() + scaled(600)
            while True:
                fresh = [
                    p
                    for p in list_closed_segments(data / "events")
                    if extracted is None
                    or datetime.fromtimestamp(p.stat().st_mtime, UTC) > extracted
                ]
                if len(fresh) >= 3:
                    break
                assert time.monotonic() < deadline, "live shoppers closed no new segment"
                time.sleep(0.5)
        finally:
            shoppers.terminate()
            shoppers.wait(timeout=30)

        resources = {
            "events": EventLogDir(path=str(data / "events")),
            "lake": LakeDir(path=str(data / "lake")),
        }
        with dg.build_sensor_context(resources=resources) as ctx:
            result = closed_segments_sensor(ctx)
        requested = [r.partition_key for r in result.run_requests]
        assert today in requested, requested

        # The refresh's held-out part is a few minutes of live shoppers, the first run's was a
        # day of history: their nDCG figures differ by more than the default 0.01 either way
        # (0.2584 against 0.2727 in one CI run). This test is about the loop, so the gate only
        # has to see the retrain beat popularity; the drop rule has its own tests.
        monkeypatch.setenv("STORELOOP_RECS_GATE_MAX_DROP", "1.0")
        defs = build_definitions(data, url)
        with dg.DagsterInstance.ephemeral() as instance:
            refresh = defs.resolve_job_def("events_refresh").execute_in_process(
                partition_key=today, instance=instance, raise_on_error=False
            )
        assert refresh.success
        promoted = {
            e.asset_key.path[-1]: e.materialization.metadata
            for e in refresh.get_asset_materialization_events()
        }["recs_promotion"]
        second = registry.serving_version("als")
        assert promoted["promoted"].value is True, promoted
        assert second != first

        deadline = time.monotonic() + scaled(300)
        while serving_label() != f"als:{second}":
            assert time.monotonic() < deadline, f"the shop still serves {serving_label()}"
            time.sleep(0.5)
