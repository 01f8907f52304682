"""Dagster on PostgreSQL: one setting moves run, event-log and schedule storage there.

A materialization, a tick of the nightly schedule and a tick of the closed-segment sensor run
through Dagster's own scheduler and sensor daemon code against the instance that
``pipelines.instance`` writes from a ``postgresql://`` URL, and each leaves its rows in the
test's PostgreSQL schema (read back with SQL, not through Dagster).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import orjson
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.sensor import execute_sensor_iteration
from dagster._scheduler.scheduler import launch_scheduled_runs
from sqlalchemy import create_engine, text

from pipelines.assets.raw import raw_events
from pipelines.instance import InstanceConfigError, dagster_pg_url, write_instance_config
from pipelines.resources import build_resources
from tests.pipelines.shop_builder import event, write_segment

DAY = "2026-11-20"


def _pg_rows(url: str, sql: str) -> list[tuple]:
    engine = create_engine(dagster_pg_url(url))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


@pytest.fixture
def instance(pg_schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the artifact storage's base, as deployed
    write_instance_config(home, pg_schema_url)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


@pytest.fixture
def shop_dir(tmp_path: Path) -> Path:
    """A DATA_DIR with one closed segment of three events on DAY."""
    data_dir = tmp_path / "data"
    when = datetime.fromisoformat(f"{DAY}T10:00:00+00:00")
    lines = [orjson.dumps(event("page_view", when, session_id=f"s{i}")) + b"\n" for i in range(3)]
    write_segment(data_dir / "events", when, lines)
    return data_dir


def _workspace(tmp_path: Path, data_dir: Path) -> InProcessWorkspaceLoadTarget:
    """A code location with storeloop's definitions over ``data_dir``, loaded in process."""
    module = tmp_path / "storeloop_defs.py"
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    module.write_text(
        "from pipelines.definitions import build_definitions\n"
        f"defs = build_definitions({str(data_dir)!r}, {db!r})\n"
    )
    origin = LoadableTargetOrigin(
        executable_path=sys.executable, python_file=str(module), attribute="defs"
    )
    return InProcessWorkspaceLoadTarget(
        InProcessCodeLocationOrigin(origin, location_name="storeloop")
    )


def test_user_url_is_rewritten_to_psycopg2() -> None:
    assert dagster_pg_url("postgresql://u:p@db:5432/d?sslmode=require") == (
        "postgresql+psycopg2://u:p@db:5432/d?sslmode=require"
    )
    assert dagster_pg_url("postgres://u@db/d").startswith("postgresql+psycopg2://")
    with pytest.raises(InstanceConfigError, match="DAGSTER_PG_URL"):
        dagster_pg_url("mysql://u@db/d")


def test_instance_command_rejects_a_bad_url_with_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.instance", "--dagster-home", str(tmp_path)],
        env={"DAGSTER_PG_URL": "sqlite:///x.db", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: DAGSTER_PG_URL must be a postgresql:// URL with a host, got 'sqlite:///x.db'"
    ]


def test_storage_is_postgresql(instance, pg_schema_url: str) -> None:
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    tables = {
        row[0]
        for row in _pg_rows(
            pg_schema_url, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
    }
    assert {"runs", "event_logs", "jobs", "job_ticks"} <= tables


def test_materialization_is_recorded_in_postgresql(
    instance, shop_dir: Path, pg_schema_url: str
) -> None:
    result = dg.materialize(
        [raw_events],
        resources=build_resources(shop_dir, f"sqlite:///{shop_dir / 'shop.db'}"),
        partition_key=DAY,
        instance=instance,
    )
    assert result.success
    runs = _pg_rows(pg_schema_url, "SELECT run_id, status FROM runs")
    assert runs == [(result.run_id, "SUCCESS")]
    materialized = _pg_rows(
        pg_schema_url,
        "SELECT asset_key, partition FROM event_logs WHERE dagster_event_type = "
        "'ASSET_MATERIALIZATION'",
    )
    assert materialized == [('["raw_events"]', DAY)]
    record = instance.get_latest_materialization_event(dg.AssetKey("raw_events"))
    assert record.asset_materialization.metadata["rows"].value == 3


def test_schedule_tick_is_recorded_in_postgresql(
    instance, tmp_path: Path, shop_dir: Path, pg_schema_url: str
) -> None:
    target = _workspace(tmp_path, shop_dir)
    started = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    tick_time = datetime(2026, 11, 21, 0, 31, tzinfo=UTC)
    with create_test_daemon_workspace_context(target, instance) as context:
        location = next(iter(context.create_request_context().get_code_location_entries().values()))
        repo = next(iter(location.code_location.get_repositories().values()))
        schedule = repo.get_schedule("nightly_lakehouse")
        instance.start_schedule(schedule)
        state = instance.get_instigator_state(schedule.get_remote_origin_id(), schedule.selector_id)
        instance.update_instigator_state(
            state.with_data(state.instigator_data._replace(start_timestamp=started.timestamp()))
        )
        list(
            launch_scheduled_runs(
                context, logging.getLogger("test"), end_datetime_utc=tick_time, iteration_times={}
            )
        )
    ticks = instance.get_ticks(schedule.get_remote_origin_id(), schedule.selector_id)
    assert [t.status for t in ticks] == [TickStatus.SUCCESS]
    (run_id,) = ticks[0].run_ids
    run = instance.get_run_by_id(run_id)
    assert run.tags["dagster/partition"] == "2026-11-20"
    assert run.job_name == "lakehouse_daily"
    rows = _pg_rows(pg_schema_url, "SELECT status FROM job_ticks")
    assert rows == [("SUCCESS",)]
    assert _pg_rows(pg_schema_url, "SELECT run_id FROM runs") == [(run_id,)]


def test_sensor_tick_is_recorded_in_postgresql(
    instance, tmp_path: Path, shop_dir: Path, pg_schema_url: str
) -> None:
    target = _workspace(tmp_path, shop_dir)
    with create_test_daemon_workspace_context(target, instance) as context:
        location = next(iter(context.create_request_context().get_code_location_entries().values()))
        repo = next(iter(location.code_location.get_repositories().values()))
        sensor = repo.get_sensor("closed_segments_sensor")
        instance.start_sensor(sensor)
        list(execute_sensor_iteration(context, logging.getLogger("test"), None, None))
    ticks = instance.get_ticks(sensor.get_remote_origin_id(), sensor.selector_id)
    assert [t.status for t in ticks] == [TickStatus.SUCCESS]
    (run_id,) = ticks[0].run_ids
    assert instance.get_run_by_id(run_id).tags["dagster/partition"] == DAY
    state = instance.get_instigator_state(sensor.get_remote_origin_id(), sensor.selector_id)
    assert orjson.loads(state.instigator_data.cursor)["last"].startswith("20261120T100000Z")
    assert _pg_rows(pg_schema_url, "SELECT status FROM job_ticks") == [("SUCCESS",)]
