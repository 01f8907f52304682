"""Run the whole lakehouse once, as `make run` does on a fresh demo shop.

``python -m pipelines.run_all`` extracts every daily partition that holds data (from the shop's
first order, user or event day to today) as one ``lakehouse_backfill`` run per stretch of
consecutive days, then builds the warehouse, features, models and search index with their
checks as one ``lakehouse_build`` run. Runs are recorded in the Dagster instance at ``DAGSTER_HOME``
when it is set, so they show in the UI like any other run.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
from sqlalchemy import create_engine, text

from features.events import list_closed_segments
from features.lake import segment_days
from pipelines.automation import backfill_job, build_job
from pipelines.definitions import build_definitions
from pipelines.instance import load_instance
from pipelines.settings import PipelineSettings


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


def contiguous_ranges(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days cut into runs of consecutive days: each becomes one backfill run."""
    ranges: list[tuple[date, date]] = []
    for day in days:
        if ranges and day - ranges[-1][1] == timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def _rows(result: dg.ExecuteInProcessResult) -> int:
    """Rows the run's materialisations reported (``rows`` or ``dagster/row_count``)."""
    total = 0
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        value = metadata.get("rows") or metadata.get("dagster/row_count")
        total += int(getattr(value, "value", 0) or 0)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--from-day", help="first partition (default: the first day with data)")
    parser.add_argument("--to-day", help="last partition (default: the last day with data)")
    args = parser.parse_args(argv)

    settings = PipelineSettings()
    data_dir = settings.data_dir.resolve()
    url = settings.sqlalchemy_url
    defs = build_definitions(
        data_dir,
        url,
        events_url=settings.events_url,
        events_stream=settings.events_stream,
        registry_dir=settings.registry_dir,
        lake_dir=settings.lake_dir,
    )
    instance = load_instance()
    # The shared stream's events count towards the days below.
    defs.resources["events"].land()
    days = data_days(url, settings.layout.resolved().events)
    if args.from_day:
        days = [d for d in days if d >= date.fromisoformat(args.from_day)]
    if args.to_day:
        days = [d for d in days if d <= date.fromisoformat(args.to_day)]
    started = time.perf_counter()
    backfill = defs.resolve_job_def(backfill_job.name)
    for first, last in contiguous_ranges(days):
        step = time.perf_counter()
        result = backfill.execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
                "storeloop/run": "run_all",
            },
        )
        span = (last - first).days + 1
        print(
            f"  raw: {first} … {last} ({span} day{'s' * (span > 1)}, one run): "
            f"{'ok' if result.success else 'FAILED'}, {_rows(result):,} rows, "
            f"{time.perf_counter() - step:.0f} s",
            flush=True,
        )
        if not result.success:
            print(f"raw extraction failed for {first} … {last}", file=sys.stderr)
            return 1
    step = time.perf_counter()
    result = defs.resolve_job_def(build_job.name).execute_in_process(
        instance=instance, raise_on_error=False, tags={"storeloop/run": "run_all"}
    )
    checks = result.get_asset_check_evaluations()
    failed = [c.check_name for c in checks if not c.passed]
    print(
        f"  warehouse, features, models, search: {'ok' if result.success else 'FAILED'}, "
        f"{len(result.get_asset_materialization_events())} assets, {len(checks)} checks"
        f"{' (failed: ' + ', '.join(failed) + ')' if failed else ''}, "
        f"{time.perf_counter() - step:.0f} s ({time.perf_counter() - started:.0f} s in all)",
        flush=True,
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
