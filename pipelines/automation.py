"""Jobs, the nightly schedule and the closed-segment sensor.

The nightly job re-extracts yesterday (late closed segments and last-minute order updates land
there) and rebuilds everything downstream. The sensor reacts to new closed event segments within
a minute, so the warehouse follows the shop during the day without polling the database.
"""

import json
from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg

from features.events import list_closed_segments
from features.lake import segment_dates
from pipelines.partitions import daily_partitions
from pipelines.resources import EventLogDir

#: Seen-segment names older than this (before the newest seen one) are dropped from the cursor.
CURSOR_WINDOW = timedelta(days=1)

#: dagster.yaml limits runs with this tag to one at a time: DuckDB has one writer per file.
WAREHOUSE_WRITER = {"storeloop/warehouse": "write"}

lakehouse_job = dg.define_asset_job(
    "lakehouse_daily",
    selection=dg.AssetSelection.groups("raw", "warehouse", "features", "models", "search"),
    description="One day of every raw table, then every table and model downstream.",
    tags=WAREHOUSE_WRITER,
)

events_job = dg.define_asset_job(
    "events_refresh",
    selection=dg.AssetSelection.assets("raw_events") | dg.AssetSelection.groups("warehouse"),
    description="One day of events, then the warehouse; what the segment sensor starts.",
    tags=WAREHOUSE_WRITER,
)


@dg.schedule(
    job=lakehouse_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
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
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def closed_segments_sensor(
    context: dg.SensorEvaluationContext, events: EventLogDir
) -> dg.SensorResult | dg.SkipReason:
    """Start one run per day touched by closed segments not seen before.

    The cursor keeps the last seen segment name and the names seen in the day before it:
    segment names start with their *open* time, so a long-open segment can close after a newer
    one and would be missed by a bare "greater than last name" test.
    """
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
        days.update(d for d in _days(first, last) if d in valid)
    last_name = max([state["last"], *(p.name for p in new)])
    keep_from = _minus_day(last_name[:8])
    cursor = {
        "last": last_name,
        "seen": sorted(n for n in seen | {p.name for p in new} if n[:8] >= keep_from),
    }
    requests = [
        dg.RunRequest(run_key=f"segments-{day}-{last_name}", partition_key=day)
        for day in sorted(days)
    ]
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))


def _minus_day(stamp: str) -> str:
    """``YYYYMMDD`` one day earlier ('' stays '' so everything counts as new)."""
    if not stamp or not stamp.isdigit():
        return ""
    day = date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8])) - CURSOR_WINDOW
    return day.strftime("%Y%m%d")
