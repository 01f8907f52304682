"""Jobs, the nightly schedule and the closed-segment sensor.

The nightly job re-extracts yesterday (late closed segments and last-minute order updates land
there) and rebuilds everything downstream. The sensor reacts to new closed event segments within
a minute, so the warehouse follows the shop during the day without polling the database.
"""

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg

from features.events import list_closed_segments
from features.lake import extracted_at, segment_dates
from pipelines.partitions import daily_partitions
from pipelines.resources import EventLogDir, LakeDir

#: Seen-segment names older than this (before the newest seen one) are dropped from the cursor.
CURSOR_WINDOW = timedelta(days=1)

#: dagster.yaml limits runs with this tag to one at a time: DuckDB has one writer per file.
WAREHOUSE_WRITER = {"storeloop/warehouse": "write"}

#: ``make run`` sets STORELOOP_AUTOMATION=on: the demo retrains by itself from the first minute.
#: Elsewhere (tests, a fresh `dagster dev`) both start stopped until an operator turns them on.
AUTOMATION_ON = os.environ.get("STORELOOP_AUTOMATION", "").lower() in ("1", "on", "true", "yes")
#: How often the sensor looks for closed segments (a demo or a test may look more often).
SENSOR_INTERVAL_SECONDS = int(os.environ.get("STORELOOP_SENSOR_INTERVAL", "60"))

lakehouse_job = dg.define_asset_job(
    "lakehouse_daily",
    selection=dg.AssetSelection.groups("raw", "warehouse", "features", "models", "search"),
    description="One day of every raw table, then every table and model downstream.",
    tags=WAREHOUSE_WRITER,
)

backfill_job = dg.define_asset_job(
    "lakehouse_backfill",
    selection=dg.AssetSelection.groups("raw"),
    description="Every raw table over a range of days in one run (what `make run` starts with).",
    tags=WAREHOUSE_WRITER,
)

build_job = dg.define_asset_job(
    "lakehouse_build",
    selection=dg.AssetSelection.groups("warehouse", "features", "models", "search"),
    description="Warehouse, features, models and search index from the raw partitions there are.",
    tags=WAREHOUSE_WRITER,
)

events_job = dg.define_asset_job(
    "events_refresh",
    selection=dg.AssetSelection.assets("raw_events")
    | dg.AssetSelection.groups("warehouse", "features", "models", "search"),
    description=(
        "One day of events, then the warehouse, features, models (trained, gated, promoted) "
        "and search index; what the segment sensor starts, so the shop retrains by itself."
    ),
    tags=WAREHOUSE_WRITER,
)


@dg.schedule(
    job=lakehouse_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING
    if AUTOMATION_ON
    else dg.DefaultScheduleStatus.STOPPED,
)
def nightly_lakehouse(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """At 00:30 UTC, the day that just ended (run key = the day, so a retry is not doubled)."""
    day = (context.scheduled_execution_time.date() - timedelta(days=1)).isoformat()
    return dg.RunRequest(run_key=f"nightly-{day}", partition_key=day)


def _days(first: date, last: date) -> Iterator[str]:
    current = first
    while current <= last:
        yield current.isoformat()
        current += timedelta(days=1)


@dg.sensor(
    job=events_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING
    if AUTOMATION_ON
    else dg.DefaultSensorStatus.STOPPED,
)
def closed_segments_sensor(
    context: dg.SensorEvaluationContext, events: EventLogDir, lake: LakeDir
) -> dg.SensorResult | dg.SkipReason:
    """Start one run per day touched by closed segments not seen before.

    The cursor keeps the last seen segment name and the names seen in the day before it:
    segment names start with their *open* time, so a long-open segment can close after a newer
    one and would be missed by a bare "greater than last name" test. A segment that closed
    before every day it touches was extracted (the demo's first backfill) is already in the
    lake: it is remembered but starts no run, so a fresh demo does not retrain once per day.
    """
    events.land()  # the shared stream, when configured, becomes closed segments first
    state = json.loads(context.cursor) if context.cursor else {"last": "", "seen": []}
    seen = set(state["seen"])
    segments = list_closed_segments(events.directory)
    floor = state["last"][:8]
    new = [p for p in segments if p.name not in seen and p.name[:8] >= _minus_day(floor)]
    if not new:
        return dg.SkipReason(f"no new closed segment after {state['last'] or 'the start'}")
    valid = set(daily_partitions.get_partition_keys())
    days: set[str] = set()
    for path in new:
        first, last = segment_dates(path)
        touched = [d for d in _days(first, last) if d in valid]
        if not _in_lake(lake, path, touched):
            days.update(touched)
    last_name = max([state["last"], *(p.name for p in new)])
    keep_from = _minus_day(last_name[:8])
    cursor = {
        "last": last_name,
        "seen": sorted(n for n in seen | {p.name for p in new} if n[:8] >= keep_from),
    }
    if not days:
        return dg.SensorResult(
            skip_reason="new segments are already in the lake", cursor=json.dumps(cursor)
        )
    requests = [
        dg.RunRequest(run_key=f"segments-{day}-{last_name}", partition_key=day)
        for day in sorted(days)
    ]
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))


def _in_lake(lake: LakeDir, segment: Path, days: list[str]) -> bool:
    """True when every day of ``segment`` was extracted after the segment closed."""
    closed = datetime.fromtimestamp(segment.stat().st_mtime, UTC)
    for day in days:
        taken = extracted_at(lake.directory, "events", day)
        if taken is None or taken <= closed:
            return False
    return bool(days)


def _minus_day(stamp: str) -> str:
    """``YYYYMMDD`` one day earlier ('' stays '' so everything counts as new)."""
    if not stamp or not stamp.isdigit():
        return ""
    day = date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8])) - CURSOR_WINDOW
    return day.strftime("%Y%m%d")
