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
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
from sqlalchemy import create_engine, text

from features.events import list_closed_segments
from features.lake import segment_days
from pipelines.assets.raw import raw_events, raw_table_assets
from pipelines.checks import asset_checks
from pipelines.definitions import all_assets
from pipelines.resources import build_resources


def data_days(sqlalchemy_url: str, events_dir: Path) -> list[date]:
    """Every UTC day on which users, orders or events changed, oldest first.

    Simulated history can lie months away from today, with nothing in between, so the days
    come from the data rather than from a calendar range.
    """
    days: set[date] = set()
    engine = create_engine(sqlalchemy_url)
    try:
        with engine.connect() as conn:
            for table, column in (
                ("users", "created_at"),
                ("orders", "created_at"),
                ("orders", "updated_at"),
                ("reviews", "created_at"),
                ("stock_movements", "created_at"),
            ):
                try:
                    values = conn.execute(text(f"SELECT DISTINCT {column} FROM {table}")).scalars()
                except Exception:  # a table that does not exist yet holds no data
                    continue
                for value in values:
                    if isinstance(value, str):
                        value = datetime.fromisoformat(value)
                    if value is not None:
                        days.add(value.date())
    finally:
        engine.dispose()
    for segment in list_closed_segments(events_dir):
        days.update(segment_days(segment))
    return sorted(days) or [datetime.now(UTC).date()]


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
    days = data_days(url, data_dir / "events")
    if args.from_day:
        days = [d for d in days if d >= date.fromisoformat(args.from_day)]
    if args.to_day:
        days = [d for d in days if d <= date.fromisoformat(args.to_day)]
    raw = [*raw_table_assets, raw_events]
    started = time.perf_counter()
    for done, day in enumerate(days, 1):
        result = dg.materialize(
            raw,
            resources=resources,
            partition_key=day.isoformat(),
            instance=instance,
            raise_on_error=False,
            tags={"storeloop/run": "run_all"},
        )
        print(f"  raw partitions {done}/{len(days)} ({day.isoformat()})", flush=True)
        if not result.success:
            print(f"raw extraction failed for {day.isoformat()}", file=sys.stderr)
            return 1
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
