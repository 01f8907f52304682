"""Assemble the Definitions for one ``DATA_DIR`` and database.

A function rather than a module constant so tests build the same graph over their own temp
directory and database; ``pipelines.defs`` is this function applied to the environment.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from features.event_stream import DEFAULT_STREAM
from pipelines.assets.ml import ml_assets
from pipelines.assets.raw import raw_events, raw_table_assets
from pipelines.assets.warehouse import warehouse_assets
from pipelines.automation import (
    backfill_job,
    build_job,
    closed_segments_sensor,
    events_job,
    lakehouse_job,
    nightly_lakehouse,
)
from pipelines.checks import asset_checks
from pipelines.resources import build_resources

all_assets = [*raw_table_assets, raw_events, *warehouse_assets, *ml_assets]


def build_definitions(
    data_dir: Path | str,
    sqlalchemy_url: str,
    *,
    events_url: str | None = None,
    events_stream: str = DEFAULT_STREAM,
    registry_dir: Path | str | None = None,
    lake_dir: Path | str | None = None,
) -> dg.Definitions:
    """Every asset, check, job, schedule and sensor, with resources for one deployment.

    The in-process executor is deliberate: DuckDB allows one writing process per file, and on
    two cores parallel steps would buy little.
    """
    return dg.Definitions(
        assets=all_assets,
        asset_checks=asset_checks,
        jobs=[lakehouse_job, events_job, backfill_job, build_job],
        schedules=[nightly_lakehouse],
        sensors=[closed_segments_sensor],
        resources=build_resources(
            data_dir,
            sqlalchemy_url,
            events_url=events_url,
            events_stream=events_stream,
            registry_dir=registry_dir,
            lake_dir=lake_dir,
        ),
        executor=dg.in_process_executor,
    )
