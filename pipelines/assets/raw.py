"""Raw layer: each shop table and the clickstream as daily Parquet partitions.

Bodies are thin: ``features.lake`` does the extraction; these assets only pass resources in and
describe the result (rows, partition, file hash, quarantined lines) for the UI.

Every raw asset takes a *range* of days in one run (``BackfillPolicy.single_run``): a demo
backfill of 30 days used to be 30 Dagster runs of 13 steps each, three minutes of mostly
orchestration; as one run it is one step per table looping over its days. One day (the nightly
schedule, the segment sensor) is the range of one.
"""

import warnings
from datetime import date

import dagster as dg
from dagster import AssetExecutionContext

from features.lake import (
    SOURCE_TABLES,
    ExtractResult,
    SourceTable,
    extract_events,
    extract_table,
    table_digest,
)
from pipelines.partitions import daily_partitions
from pipelines.resources import EventLogDir, LakeDir, ShopDatabase

# Dagster marks ``backfill_policy`` beta and warns at every import; the single-run backfill is a
# deliberate choice (docs/pipelines.md), and the warning would be the first line every command
# that loads the definitions prints (``python -m pipelines.instance`` promises one line on error).
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)


def _metadata(result: ExtractResult, day: str) -> dict[str, dg.MetadataValue | int | str]:
    return {
        "rows": dg.MetadataValue.int(result.rows),
        "partition": day,
        "path": dg.MetadataValue.path(str(result.path)),
        "sha256": table_digest(result.path),
    }


def _range_metadata(days: list[str], rows: int) -> dict[str, dg.MetadataValue | int | str]:
    """What a multi-day run reports: the days it covered and the rows over all of them."""
    return {
        "rows": dg.MetadataValue.int(rows),
        "partitions": f"{days[0]} … {days[-1]} ({len(days)})",
    }


#: One run per range of days (see the module docstring).
SINGLE_RUN = dg.BackfillPolicy.single_run()


def _raw_table_asset(spec: SourceTable) -> dg.AssetsDefinition:
    parent = f", partitioned by its {spec.parent.table}' change time" if spec.parent else ""
    description = (
        f"Rows of shop table `{spec.source}` whose `{spec.time_column or 'parent'}` falls on the "
        f"partition's UTC day{parent}; one Parquet file per day, rewritten whole on re-run."
    )

    @dg.asset(
        name=f"raw_{spec.name}",
        group_name="raw",
        partitions_def=daily_partitions,
        backfill_policy=SINGLE_RUN,
        kinds={"parquet"},
        description=description,
        tags={"layer": "raw"},
    )
    def _asset(
        context: AssetExecutionContext, shop: ShopDatabase, lake: LakeDir
    ) -> dg.MaterializeResult:
        days = context.partition_keys
        with shop.engine() as engine:
            results = [extract_table(engine, lake.directory, spec, day) for day in days]
        last = results[-1]
        if len(days) == 1:
            metadata = _metadata(last, days[0])
        else:
            metadata = _range_metadata(days, sum(r.rows for r in results))
        metadata["source_present"] = last.source_present
        if last.missing_columns:
            metadata["missing_columns"] = ", ".join(last.missing_columns)
        return dg.MaterializeResult(metadata=metadata)

    return _asset


raw_table_assets = [_raw_table_asset(spec) for spec in SOURCE_TABLES.values()]


@dg.asset(
    group_name="raw",
    partitions_def=daily_partitions,
    backfill_policy=SINGLE_RUN,
    kinds={"parquet"},
    tags={"layer": "raw"},
)
def raw_events(
    context: AssetExecutionContext, events: EventLogDir, lake: LakeDir
) -> dg.MaterializeResult:
    """Clickstream events of the partition's UTC day (by ``server_ts``), from closed segments
    only (the shared stream, when configured, is landed as segments first), de-duplicated by
    ``event_id``; unusable lines go to ``lake/quarantine`` and are counted here instead of
    failing the run. A single-run backfill hands this one run several days."""
    days = context.partition_keys
    landed = events.land()
    results = [extract_events(events.directory, lake.directory, day) for day in days]
    for day, result in zip(days, results, strict=True):
        if result.quarantined:
            context.log.warning(f"{result.quarantined} unusable event line(s) quarantined: {day}")
    if len(days) > 1:
        metadata = {
            **_range_metadata(days, sum(r.rows for r in results)),
            "quarantined": dg.MetadataValue.int(sum(r.quarantined for r in results)),
            "duplicates_dropped": dg.MetadataValue.int(sum(r.duplicates for r in results)),
            "segments_read": dg.MetadataValue.int(len({s for r in results for s in r.segments})),
        }
        if landed is not None:
            metadata.update(
                stream_messages_landed=dg.MetadataValue.int(landed.messages),
                stream_redelivered=dg.MetadataValue.int(landed.redelivered),
            )
        return dg.MaterializeResult(metadata=metadata)
    day, result = days[0], results[0]
    metadata = _metadata(result, day)
    metadata.update(
        quarantined=dg.MetadataValue.int(result.quarantined),
        duplicates_dropped=dg.MetadataValue.int(result.duplicates),
        segments_read=dg.MetadataValue.int(len(result.segments)),
        last_segment=result.segments[-1] if result.segments else "",
        day_of_week=date.fromisoformat(day).strftime("%A"),
    )
    if landed is not None:
        metadata.update(
            stream_messages_landed=dg.MetadataValue.int(landed.messages),
            stream_redelivered=dg.MetadataValue.int(landed.redelivered),
        )
    if result.extra.get("quarantine_path"):
        metadata["quarantine_path"] = dg.MetadataValue.path(result.extra["quarantine_path"])
    return dg.MaterializeResult(metadata=metadata)
