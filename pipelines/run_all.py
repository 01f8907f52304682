"""Run the whole lakehouse once, as `make run` does on a fresh demo shop.

``python -m pipelines.run_all`` extracts every daily partition that holds data (from the shop's
first order, user or event day to today), then builds the warehouse, features, models and
search index with their checks. Runs are recorded in the Dagster instance at ``DAGSTER_HOME``
when it is set, so they show in the UI like any other run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
from sqlalchemy import create_engine, text

from features.events import list_closed_segments
from features.lake import segment_dates
from pipelines.assets.raw import raw_events, raw_table_assets
from pipelines.checks import asset_checks
from pipelines.definitions import all_assets
from pipelines.resources import build_resources


def data_days(sqlalchemy_url: str, events_dir: Path) -> tuple[date, date]:
    """The first and last UTC day with users, orders or events (today when there are none).

    Simulated history can lie months away from today, so the range comes from the data.
    """
    days = []
    engine = create_engine(sqlalchemy_url)
    try:
        with engine.connect() as conn:
            for table, column in (
                ("users", "created_at"),
                ("orders", "created_at"),
                ("orders", "updated_at"),
            ):
                try:
                    low, high = conn.execute(
                        text(f"SELECT min({column}), max({column}) FROM {table}")
                    ).one()
                except Exception:  # a table that does not exist yet holds no data
                    continue
                for value in (low, high):
                    if value is not None:
                        if isinstance(value, str):
                            value = datetime.fromisoformat(value)
                        days.append(value.date())
    finally:
        engine.dispose()
    for segment in list_closed_segments(events_dir):
        days.extend(segment_dates(segment))
    if not days:
        today = datetime.now(UTC).date()
        return today, today
    return min(days), max(days)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--from-day", help="first partition (default: the first day with data)")
    parser.add_argument("--to-day", help="last partition (default: the last day with data)")
    args = parser.parse_args(argv)

    from serving.core.config import Settings

    settings = Settings()
    data_dir = settings.data_dir.resolve()
    url = settings.sqlalchemy_url
    resources = build_resources(data_dir, url)
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    first, last = data_days(url, data_dir / "events")
    first = date.fromisoformat(args.from_day) if args.from_day else first
    last = date.fromisoformat(args.to_day) if args.to_day else last
    raw = [*raw_table_assets, raw_events]
    started = time.perf_counter()
    day = first
    total_days = (last - first).days + 1
    while day <= last:
        result = dg.materialize(
            raw,
            resources=resources,
            partition_key=day.isoformat(),
            instance=instance,
            raise_on_error=False,
            tags={"storeloop/run": "run_all"},
        )
        done = (day - first).days + 1
        print(f"  raw partitions {done}/{total_days} ({day.isoformat()})", flush=True)
        if not result.success:
            print(f"raw extraction failed for {day.isoformat()}", file=sys.stderr)
            return 1
        day += timedelta(days=1)
    downstream = [a for a in all_assets if a not in raw]
    result = dg.materialize(
        [*downstream, *asset_checks],
        resources=resources,
        instance=instance,
        raise_on_error=False,
        tags={"storeloop/run": "run_all"},
        selection=dg.AssetSelection.assets(*downstream) | dg.AssetSelection.all_asset_checks(),
    )
    outcome = "ok" if result.success else "FAILED"
    print(
        f"  warehouse, features, models, search: {outcome} "
        f"({time.perf_counter() - started:.0f} s in all)",
        flush=True,
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
