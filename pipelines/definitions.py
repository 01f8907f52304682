"""Assemble the Definitions for one ``DATA_DIR`` and database.

A function rather than a module constant so tests build the same graph over their own temp
directory and database; ``pipelines.defs`` is this function applied to the environment.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipelines.assets.ml import ml_assets
from pipelines.assets.raw import raw_events, raw_table_assets
from pipelines.assets.warehouse import warehouse_assets
from pipelines.automation import (
    closed_segments_sensor,
    events_job,
    lakehouse_job,
    nightly_lakehouse,
)
from pipelines.checks import asset_checks
from pipelines.resources import build_resources

all_assets = [*raw_table_assets, raw_events, *warehouse_assets, *ml_assets]


def build_definitions(data_dir: Path | str, sqlalchemy_url: str) -> dg.Definitions:
    """Every asset, check, job, schedule and sensor, with resources for one deployment.

    The in-process executor is deliberate: DuckDB allows one writing process per file, and on
    two cores parallel steps would buy little.
    """
    return dg.Definitions(
        assets=all_assets,
        asset_checks=asset_checks,
        jobs=[lakehouse_job, events_job],
        schedules=[nightly_lakehouse],
        sensors=[closed_segments_sensor],
        resources=build_resources(data_dir, sqlalchemy_url),
        executor=dg.in_process_executor,
    )
