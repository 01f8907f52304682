"""Raw layer: each shop table and the clickstream as daily Parquet partitions.

Bodies are thin: ``features.lake`` does the extraction; these assets only pass resources in and
describe the result (rows, partition, file hash, quarantined lines) for the UI.
"""

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


def _metadata(result: ExtractResult, day: str) -> dict[str, dg.MetadataValue | int | str]:
    return {
        "rows": dg.MetadataValue.int(result.rows),
        "partition": day,
        "path": dg.MetadataValue.path(str(result.path)),
        "sha256": table_digest(result.path),
    }


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
        kinds={"parquet"},
        description=description,
        tags={"layer": "raw"},
    )
    def _asset(
        context: AssetExecutionContext, shop: ShopDatabase, lake: LakeDir
    ) -> dg.MaterializeResult:
        day = context.partition_key
        with shop.engine() as engine:
            result = extract_table(engine, lake.directory, spec, day)
        metadata = _metadata(result, day)
        metadata["source_present"] = result.source_present
        if result.missing_columns:
            metadata["missing_columns"] = ", ".join(result.missing_columns)
        return dg.MaterializeResult(metadata=metadata)

    return _asset


raw_table_assets = [_raw_table_asset(spec) for spec in SOURCE_TABLES.values()]


@dg.asset(
    group_name="raw",
    partitions_def=daily_partitions,
    kinds={"parquet"},
    tags={"layer": "raw"},
)
def raw_events(
    context: AssetExecutionContext, events: EventLogDir, lake: LakeDir
) -> dg.MaterializeResult:
    """Clickstream events of the partition's UTC day (by ``server_ts``), from closed segments
    only, de-duplicated by ``event_id``; unusable lines go to ``lake/quarantine`` and are counted
    here instead of failing the run."""
    day = context.partition_key
    result = extract_events(events.directory, lake.directory, day)
    if result.quarantined:
        context.log.warning(f"{result.quarantined} unusable event line(s) quarantined for {day}")
    metadata = _metadata(result, day)
    metadata.update(
        quarantined=dg.MetadataValue.int(result.quarantined),
        duplicates_dropped=dg.MetadataValue.int(result.duplicates),
        segments_read=dg.MetadataValue.int(len(result.segments)),
        last_segment=result.segments[-1] if result.segments else "",
        day_of_week=date.fromisoformat(day).strftime("%A"),
    )
    if result.extra.get("quarantine_path"):
        metadata["quarantine_path"] = dg.MetadataValue.path(result.extra["quarantine_path"])
    return dg.MaterializeResult(metadata=metadata)
