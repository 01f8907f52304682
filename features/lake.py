"""The raw layer of the lakehouse: shop tables and closed event segments as daily Parquet.

Plain Python (SQLAlchemy, pyarrow, orjson) so the Dagster assets stay thin and the benchmark can
time the same code without an orchestrator. Everything here is written for two properties:

* **Idempotent partitions.** Partition ``D`` of a table holds the rows whose change time (or
  their parent's) falls on UTC day ``D``. Re-extracting ``D`` rewrites one file with a fixed row
  order, fixed column types and fixed writer options, so an unchanged source gives the same
  bytes and a re-run never appends duplicates. Readers take the latest version of a key across
  partitions (see ``features.warehouse``).
* **A declared contract per table.** Each source table has an Arrow schema here. The query
  selects exactly those columns, so SQLite and PostgreSQL produce the same types; a column or a
  whole table the database does not have yet comes back as typed nulls or an empty table.

Layout under the lake root::

    raw/<table>/date=YYYY-MM-DD/part-0.parquet
    quarantine/events/date=YYYY-MM-DD/part-0.jsonl   (only when a segment had bad lines)

One module past 500 lines on purpose: it is mostly the declared Arrow contract of every raw
table, which reads best as one list beside the extraction that enforces it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Engine, inspect, text

from features import atomic
from features.events import ARROW_SCHEMA as EVENT_SCHEMA
from features.events import FIELDS as EVENT_FIELDS
from features.events import iter_segment_records, list_closed_segments

__all__ = [
    "EVENT_SCHEMA",
    "SOURCE_TABLES",
    "ExtractResult",
    "SourceTable",
    "day_bounds",
    "extract_events",
    "extract_table",
    "extracted_at",
    "partition_path",
    "read_cutoff",
    "read_partition",
    "segment_dates",
    "source_totals",
    "table_digest",
    "write_parquet",
]

_TS: Final = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Parent:
    """A child table without its own clock is partitioned by its parent's change time."""

    table: str
    key: str  # column of the parent the child's foreign key points at
    foreign_key: str  # column of the child
    time_column: str


@dataclass(frozen=True)
class SourceTable:
    """One shop table as the lake sees it: which columns, in what order, partitioned how."""

    name: str  # lake folder and asset suffix (raw_<name>)
    source: str  # table name in the shop database
    schema: pa.Schema
    key: tuple[str, ...]  # unique per version; also the row order inside a partition
    time_column: str | None = None
    parent: Parent | None = None
    json_columns: tuple[str, ...] = field(default=())


def _s(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, kind) for name, kind in fields])


#: Every extracted table. Secrets (password hashes, payment idempotency keys) and personal data
#: (e-mail, names, addresses) are deliberately not copied into the lake.
SOURCE_TABLES: Final[dict[str, SourceTable]] = {
    t.name: t
    for t in (
        SourceTable(
            "categories",
            "categories",
            _s(
                ("id", pa.int64()),
                ("parent_id", pa.int64()),
                ("slug", pa.string()),
                ("name", pa.string()),
                ("path", pa.string()),
                ("depth", pa.int64()),
                ("created_at", _TS),
                ("updated_at", _TS),
            ),
            key=("id",),
            time_column="updated_at",
        ),
        SourceTable(
            "products",
            "products",
            _s(
                ("id", pa.int64()),
                ("sku", pa.string()),
                ("title", pa.string()),
                ("description", pa.string()),
                ("brand", pa.string()),
                ("category_id", pa.int64()),
                ("price_minor", pa.int64()),
                ("currency", pa.string()),
                ("attributes", pa.string()),
                ("status", pa.string()),
                ("rating_avg", pa.float64()),
                ("rating_count", pa.int64()),
                ("created_at", _TS),
                ("updated_at", _TS),
            ),
            key=("id",),
            time_column="updated_at",
            json_columns=("attributes",),
        ),
        SourceTable(
            "users",
            "users",
            _s(
                ("id", pa.int64()),
                ("role", pa.string()),
                ("is_active", pa.bool_()),
                ("created_at", _TS),
                ("updated_at", _TS),
            ),
            key=("id",),
            time_column="updated_at",
        ),
        SourceTable(
            "session_links",
            "session_links",
            _s(("session_id", pa.string()), ("user_id", pa.int64()), ("linked_at", _TS)),
            key=("session_id",),
            time_column="linked_at",
        ),
        SourceTable(
            "orders",
            "orders",
            _s(
                ("id", pa.string()),
                ("user_id", pa.int64()),
                ("status", pa.string()),
                ("currency", pa.string()),
                ("subtotal_minor", pa.int64()),
                ("shipping_minor", pa.int64()),
                ("total_minor", pa.int64()),
                ("payment_method", pa.string()),
                ("from_cart", pa.bool_()),
                ("created_at", _TS),
                ("updated_at", _TS),
            ),
            key=("id",),
            time_column="updated_at",
        ),
        SourceTable(
            "order_items",
            "order_lines",
            _s(
                ("order_id", pa.string()),
                ("product_id", pa.int64()),
                ("title", pa.string()),
                ("quantity", pa.int64()),
                ("unit_price_minor", pa.int64()),
                ("line_total_minor", pa.int64()),
            ),
            key=("order_id", "product_id"),
            parent=Parent("orders", "id", "order_id", "updated_at"),
        ),
        SourceTable(
            "payments",
            "payments",
            _s(
                ("order_id", pa.string()),
                ("provider", pa.string()),
                ("status", pa.string()),
                ("amount_minor", pa.int64()),
                ("refunded_minor", pa.int64()),
                ("currency", pa.string()),
                ("brand", pa.string()),
                ("decline_code", pa.string()),
                ("created_at", _TS),
                ("updated_at", _TS),
            ),
            key=("order_id",),
            time_column="updated_at",
        ),
        SourceTable(
            "shipments",
            "shipments",
            _s(
                ("id", pa.int64()),
                ("order_id", pa.string()),
                ("carrier", pa.string()),
                ("status", pa.string()),
                ("created_at", _TS),
                ("updated_at", _TS),
            ),
            key=("id",),
            time_column="updated_at",
        ),
        SourceTable(
            "reviews",
            "reviews",
            _s(
                ("id", pa.int64()),
                ("product_id", pa.int64()),
                ("user_id", pa.int64()),
                ("rating", pa.int64()),
                ("title", pa.string()),
                ("body", pa.string()),
                ("created_at", _TS),
            ),
            key=("id",),
            time_column="created_at",
        ),
        SourceTable(
            "stock_movements",
            "stock_movements",
            _s(
                ("id", pa.int64()),
                ("product_id", pa.int64()),
                ("delta_on_hand", pa.int64()),
                ("delta_reserved", pa.int64()),
                ("reason", pa.string()),
                ("actor_user_id", pa.int64()),
                ("order_id", pa.string()),
                ("created_at", _TS),
            ),
            key=("id",),
            time_column="created_at",
        ),
        # Marketplace, membership and after-sales (serving/services/{marketplace,membership,
        # aftersales}). No evidence texts, card tokens or provider keys.
        SourceTable(
            "sellers",
            "sellers",
            _s(
                ("id", pa.int64()),
                ("user_id", pa.int64()),
                ("display_name", pa.string()),
                ("commission_bps", pa.int64()),
                ("status", pa.string()),
                ("created_at", _TS),
                ("updated_at", _TS),
            ),
            key=("id",),
            time_column="updated_at",
        ),
        SourceTable(
            "seller_products",
            "seller_products",
            _s(("product_id", pa.int64()), ("seller_id", pa.int64()), ("created_at", _TS)),
            key=("product_id",),
            time_column="created_at",
        ),
        SourceTable(
            "seller_shipments",
            "seller_shipments",
            _s(
                ("id", pa.int64()),
                ("order_id", pa.string()),
                ("seller_id", pa.int64()),
                ("carrier", pa.string()),
                ("status", pa.string()),
                ("units", pa.int64()),
                ("created_at", _TS),
                ("updated_at", _TS),
            ),
            key=("id",),
            time_column="updated_at",
        ),
        SourceTable(
            "seller_ledger",
            "seller_ledger",
            _s(
                ("id", pa.int64()),
                ("seller_id", pa.int64()),
                ("order_id", pa.string()),
                ("kind", pa.string()),
                ("amount_minor", pa.int64()),
                ("currency", pa.string()),
                ("created_at", _TS),
            ),
            key=("id",),
            time_column="created_at",
        ),
        SourceTable(
            "memberships",
            "memberships",
            _s(
                ("id", pa.int64()),
                ("user_id", pa.int64()),
                ("plan", pa.string()),
                ("status", pa.string()),
                ("price_minor", pa.int64()),
                ("currency", pa.string()),
                ("period_no", pa.int64()),
                ("current_period_start", _TS),
                ("current_period_end", _TS),
                ("cancel_at_period_end", pa.bool_()),
                ("renewal_failures", pa.int64()),
                ("grace_until", _TS),
                ("ended_reason", pa.string()),
                ("created_at", _TS),
                ("updated_at", _TS),
            ),
            key=("id",),
            time_column="updated_at",
        ),
        SourceTable(
            "membership_charges",
            "membership_charges",
            _s(
                ("id", pa.int64()),
                ("membership_id", pa.int64()),
                ("period_no", pa.int64()),
                ("attempt", pa.int64()),
                ("status", pa.string()),
                ("amount_minor", pa.int64()),
                ("currency", pa.string()),
                ("decline_code", pa.string()),
                ("created_at", _TS),
            ),
            key=("id",),
            time_column="created_at",
        ),
        SourceTable(
            "returns",
            "returns",
            _s(
                ("id", pa.string()),
                ("order_id", pa.string()),
                ("user_id", pa.int64()),
                ("status", pa.string()),
                ("reason", pa.string()),
                ("currency", pa.string()),
                ("amount_minor", pa.int64()),
                ("refunded_minor", pa.int64()),
                ("created_at", _TS),
                ("updated_at", _TS),
            ),
            key=("id",),
            time_column="updated_at",
        ),
        SourceTable(
            "return_lines",
            "return_lines",
            _s(
                ("return_id", pa.string()),
                ("product_id", pa.int64()),
                ("quantity", pa.int64()),
                ("unit_price_minor", pa.int64()),
                ("disposition", pa.string()),
            ),
            key=("return_id", "product_id"),
            parent=Parent("returns", "id", "return_id", "updated_at"),
        ),
        SourceTable(
            "disputes",
            "disputes",
            _s(
                ("id", pa.string()),
                ("order_id", pa.string()),
                ("status", pa.string()),
                ("reason", pa.string()),
                ("amount_minor", pa.int64()),
                ("currency", pa.string()),
                ("created_at", _TS),
                ("updated_at", _TS),
                ("closed_at", _TS),
            ),
            key=("id",),
            time_column="updated_at",
        ),
        # Pricing (serving/services/pricing): what each order's total was made of, fixed when
        # it was placed (never updated, so its clock is created_at); promotions and their
        # redemptions, held → released when an order's compensation gives a use back.
        SourceTable(
            "order_charges",
            "order_charges",
            _s(
                ("order_id", pa.string()),
                ("country", pa.string()),
                ("shipping_speed", pa.string()),
                ("goods_minor", pa.int64()),
                ("discount_minor", pa.int64()),
                ("shipping_minor", pa.int64()),
                ("tax_minor", pa.int64()),
                ("tax_mode", pa.string()),
                ("tax_rate_ppm", pa.int64()),
                ("duty_minor", pa.int64()),
                ("total_minor", pa.int64()),
                ("currency", pa.string()),
                ("created_at", _TS),
            ),
            key=("order_id",),
            time_column="created_at",
        ),
        SourceTable(
            "promotions",
            "promotions",
            _s(
                ("id", pa.int64()),
                ("code", pa.string()),
                ("name", pa.string()),
                ("kind", pa.string()),
                ("percent_bp", pa.int64()),
                ("amount_minor", pa.int64()),
                ("currency", pa.string()),
                ("min_subtotal_minor", pa.int64()),
                ("category_id", pa.int64()),
                ("starts_at", _TS),
                ("ends_at", _TS),
                ("max_uses", pa.int64()),
                ("max_uses_per_customer", pa.int64()),
                ("uses", pa.int64()),
                ("active", pa.bool_()),
                ("created_at", _TS),
                ("updated_at", _TS),
            ),
            key=("id",),
            time_column="updated_at",
        ),
        SourceTable(
            "promotion_redemptions",
            "promotion_redemptions",
            _s(
                ("id", pa.int64()),
                ("order_id", pa.string()),
                ("promotion_id", pa.int64()),
                ("user_id", pa.int64()),
                ("code", pa.string()),
                ("discount_minor", pa.int64()),
                ("status", pa.string()),
                ("created_at", _TS),
                ("updated_at", _TS),
            ),
            key=("id",),
            time_column="updated_at",
        ),
    )
}


@dataclass(frozen=True)
class ExtractResult:
    """What one partition extraction produced, for the run's metadata."""

    table: pa.Table
    path: Path
    missing_columns: tuple[str, ...] = ()
    source_present: bool = True
    quarantined: int = 0
    duplicates: int = 0
    segments: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.table.num_rows


# --------------------------------------------------------------------------------------------
# Paths and deterministic Parquet
# --------------------------------------------------------------------------------------------


def partition_path(lake_dir: Path | str, table: str, day: str) -> Path:
    """``raw/<table>/date=<day>/part-0.parquet``: one file per partition, hive-style."""
    return Path(lake_dir) / "raw" / table / f"date={day}" / "part-0.parquet"


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write with fixed options and no volatile metadata, then rename into place.

    The pandas/Arrow schema metadata is dropped and every writer option pinned, so the same
    rows in the same order always give the same bytes; the rename means a reader never sees a
    half-written file, and the temporary files of a writer that was killed are removed here.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale(path.parent, path.name)
    tmp = path.with_name(atomic.temp_name(path.name))
    pq.write_table(
        table.replace_schema_metadata(None),
        tmp,
        compression="zstd",
        compression_level=3,
        use_dictionary=True,
        write_statistics=True,
        row_group_size=1_000_000,
        data_page_version="1.0",
    )
    os.replace(tmp, path)


def read_partition(lake_dir: Path | str, table: str, day: str) -> pa.Table | None:
    """The stored partition, or None when it was never materialized."""
    path = partition_path(lake_dir, table, day)
    return pq.read_table(path) if path.exists() else None


def table_digest(path: Path) -> str:
    """sha256 of a file: the evidence that a re-run rewrote identical bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def day_bounds(day: str) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


# --------------------------------------------------------------------------------------------
# Shop tables
# --------------------------------------------------------------------------------------------


def _bind_ts(engine: Engine, moment: datetime) -> Any:
    """SQLite keeps UTC stamps as naive ISO text; a text bound compares correctly with it."""
    if engine.dialect.name == "sqlite":
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment


def _existing_columns(engine: Engine, table: str) -> set[str] | None:
    inspector = inspect(engine)
    if not inspector.has_table(table):
        return None
    return {c["name"] for c in inspector.get_columns(table)}


def _select_list(spec: SourceTable, alias: str, columns: set[str]) -> tuple[str, list[str]]:
    parts, missing = [], []
    for f in spec.schema:
        if f.name in columns:
            parts.append(f'{alias}."{f.name}"')
        else:
            parts.append(f'NULL AS "{f.name}"')
            missing.append(f.name)
    return ", ".join(parts), missing


def _column_array(values: list[Any], kind: pa.DataType, is_json: bool) -> pa.Array:
    """Turn one column of driver values into the declared Arrow type.

    SQLite hands back text stamps and 0/1 booleans, PostgreSQL aware datetimes and parsed JSON;
    both end up as the same Arrow column. JSON is re-encoded with sorted keys so the bytes do
    not depend on the backend or on dict order.
    """
    if is_json:
        values = [
            None
            if v is None
            else orjson.dumps(
                json.loads(v) if isinstance(v, str) else v, option=orjson.OPT_SORT_KEYS
            ).decode()
            for v in values
        ]
        return pa.array(values, type=pa.string())
    if pa.types.is_timestamp(kind):
        if values and any(isinstance(v, str) for v in values):
            naive = pa.array(values, type=pa.string()).cast(pa.timestamp("us"))
            return naive.cast(kind)  # SQLite text is UTC already
        return pa.array(
            [v.astimezone(UTC) if isinstance(v, datetime) and v.tzinfo else v for v in values],
            type=kind,
        )
    if pa.types.is_boolean(kind):
        return pa.array([None if v is None else bool(v) for v in values], type=kind)
    return pa.array(values, type=kind)


def _rows_to_table(rows: Sequence[Sequence[Any]], spec: SourceTable) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in spec.schema]
    arrays = [
        _column_array(list(col), f.type, f.name in spec.json_columns)
        for col, f in zip(columns, spec.schema, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=spec.schema)


def extract_table(
    engine: Engine, lake_dir: Path | str, spec: SourceTable, day: str
) -> ExtractResult:
    """Extract one table's day into its partition file (rewriting it whole).

    The query is a window on the change time, so each run reads only its day (the watermark is
    the partition bound, stored nowhere else), and ordered by the key so the file is stable.
    """
    path = partition_path(lake_dir, spec.name, day)
    columns = _existing_columns(engine, spec.source)
    if columns is None:
        table = spec.schema.empty_table()
        write_parquet(table, path)
        return ExtractResult(table, path, source_present=False)
    select, missing = _select_list(spec, "t", columns)
    order = ", ".join(f't."{k}"' for k in spec.key)
    if spec.parent is not None:
        p = spec.parent
        sql = (
            f'SELECT {select} FROM "{spec.source}" t JOIN "{p.table}" p '
            f'ON t."{p.foreign_key}" = p."{p.key}" '
            f'WHERE p."{p.time_column}" >= :lo AND p."{p.time_column}" < :hi ORDER BY {order}'
        )
    else:
        sql = (
            f'SELECT {select} FROM "{spec.source}" t '
            f'WHERE t."{spec.time_column}" >= :lo AND t."{spec.time_column}" < :hi ORDER BY {order}'
        )
    lo, hi = day_bounds(day)
    cutoff = datetime.now(UTC) - CUTOFF_MARGIN
    with engine.connect() as conn:
        rows = conn.execute(text(sql), {"lo": _bind_ts(engine, lo), "hi": _bind_ts(engine, hi)})
        table = _rows_to_table(rows.fetchall(), spec)
    write_parquet(table, path)
    _write_cutoff(path, min(hi, cutoff))
    return ExtractResult(table, path, missing_columns=tuple(missing))


#: The cut-off of an extraction lies this far before its query: a row stamped before then has
#: committed by the time the query reads (no shop transaction stays open for seconds).
CUTOFF_MARGIN = timedelta(seconds=5)
_CUTOFF_FILE = "_cutoff"


def _write_cutoff(path: Path, cutoff: datetime) -> None:
    """Record beside the partition file when its snapshot of the shop was taken.

    A sidecar rather than Parquet metadata, so an unchanged source still gives the same bytes.
    """
    atomic_path = path.parent / _CUTOFF_FILE
    tmp = atomic_path.with_suffix(".tmp")
    tmp.write_text(cutoff.isoformat())
    os.replace(tmp, atomic_path)


def extracted_at(lake_dir: Path | str, table: str, day: str) -> datetime | None:
    """When a partition's snapshot was taken (events: every segment closed before it was
    read); None when the partition was never extracted or kept no cut-off."""
    marker = partition_path(lake_dir, table, day).parent / _CUTOFF_FILE
    try:
        return datetime.fromisoformat(marker.read_text().strip())
    except (OSError, ValueError):
        return None


def read_cutoff(lake_dir: Path | str, table: str, day: str) -> datetime:
    """The snapshot time of a table's partition: every row *created* before it is in the lake.

    The day's end for a partition extracted after that day (or before cut-offs were kept).
    """
    end = day_bounds(day)[1]
    taken = extracted_at(lake_dir, table, day)
    return end if taken is None else min(end, taken)


def source_totals(
    engine: Engine,
    spec: SourceTable,
    before: datetime,
    money: str | None = None,
    by: str | None = None,
) -> tuple[int, int]:
    """Rows (and a money sum) the shop holds that changed (or, with ``by``, were created)
    before ``before``.

    Checks compare this against the warehouse over the same window, so rows changed after the
    newest extracted partition do not make a correct warehouse look wrong. ``by="created_at"``
    with ``before`` = the extraction's cut-off is a snapshot of the shop as of the cut-off that
    later writes cannot move: shoppers ordering (or parcels moving on) during a run do not
    change how many orders were created before it, nor their totals.
    """
    if _existing_columns(engine, spec.source) is None:
        return 0, 0
    money_sql = f'COALESCE(SUM(t."{money}"), 0)' if money else "0"
    if spec.parent is not None:
        p = spec.parent
        sql = (
            f'SELECT COUNT(*), {money_sql} FROM "{spec.source}" t JOIN "{p.table}" p '
            f'ON t."{p.foreign_key}" = p."{p.key}" WHERE p."{by or p.time_column}" < :hi'
        )
    else:
        sql = (
            f'SELECT COUNT(*), {money_sql} FROM "{spec.source}" t '
            f'WHERE t."{by or spec.time_column}" < :hi'
        )
    with engine.connect() as conn:
        count, total = conn.execute(text(sql), {"hi": _bind_ts(engine, before)}).one()
    return int(count), int(total)


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------

_STAMP = re.compile(r"^(\d{8})T\d{6}Z")


#: Days present in each closed segment, by (path, size, mtime): closed segments never change.
_DAYS_CACHE: dict[tuple[str, int, int], frozenset[date]] = {}


def segment_days(path: Path) -> frozenset[date]:
    """The UTC days (by ``server_ts``) of the events a closed segment holds.

    A segment's name carries its wall-clock open time, but in simulation mode events carry the
    simulated clock, so the name alone cannot say which partitions a segment touches. The days
    are read from the stamps once per closed segment (they never change) and cached; a segment
    without a readable stamp falls back to its name's day through its modification day.
    """
    stat = path.stat()
    key = (str(path), stat.st_size, int(stat.st_mtime_ns))
    cached = _DAYS_CACHE.get(key)
    if cached is not None:
        return cached
    days: set[date] = set()
    for record in iter_segment_records(path):
        stamp = record.get("server_ts") if record else None
        if isinstance(stamp, str) and len(stamp) >= 10:
            try:
                days.add(date.fromisoformat(stamp[:10]))
            except ValueError:
                continue
    if not days:
        mtime = datetime.fromtimestamp(stat.st_mtime, UTC).date()
        match = _STAMP.match(path.name)
        first = datetime.strptime(match.group(1), "%Y%m%d").date() if match else mtime
        days = {first + timedelta(days=n) for n in range((max(first, mtime) - first).days + 1)}
    result = frozenset(days)
    _DAYS_CACHE[key] = result
    return result


def segment_dates(path: Path) -> tuple[date, date]:
    """First and last UTC day of the events a closed segment holds (see :func:`segment_days`)."""
    days = segment_days(path)
    return min(days), max(days)


def _segments_for(events_dir: Path, day: date) -> list[Path]:
    chosen = []
    for path in list_closed_segments(events_dir):
        if day in segment_days(path):
            chosen.append(path)
    return chosen


def _quarantine_path(lake_dir: Path | str, day: str) -> Path:
    return Path(lake_dir) / "quarantine" / "events" / f"date={day}" / "part-0.jsonl"


def _read_segment(path: Path) -> tuple[list[dict[str, Any]], list[tuple[int, bytes]]]:
    """Records and the raw bad lines (with their line numbers) of one segment.

    ``iter_segment_records`` is the contract's own line parser; it skips blank lines, so the raw
    lines are walked the same way to keep each verdict beside the bytes it judged.
    """
    with open(path, "rb") as handle:
        raw_lines = [(n, line) for n, line in enumerate(handle, 1) if line.strip()]
    good: list[dict[str, Any]] = []
    bad: list[tuple[int, bytes]] = []
    for (number, line), record in zip(raw_lines, iter_segment_records(path), strict=True):
        if record is None:
            bad.append((number, line))
        else:
            record["_line"] = number
            good.append(record)
    return good, bad


def _events_table(records: list[dict[str, Any]]) -> tuple[pa.Table, pa.Array]:
    """Arrow table in the event schema plus a mask of rows whose stamps did not parse."""
    arrays = []
    bad = pa.array([False] * len(records))
    for f in EVENT_SCHEMA:
        values = [r[f.name] for r in records]
        if pa.types.is_timestamp(f.type):
            strings = pa.array(values, type=pa.string())
            try:
                arrays.append(strings.cast(f.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                parsed: list[datetime | None] = []
                for v in values:
                    try:
                        moment = datetime.fromisoformat(v) if v is not None else None
                    except ValueError:
                        moment = datetime.min  # marker: bad stamp
                    parsed.append(moment)
                flags = [p is datetime.min for p in parsed]
                bad = pc.or_(bad, pa.array(flags))
                arrays.append(
                    pa.array(
                        [
                            None
                            if p is None or p is datetime.min
                            else (p if p.tzinfo else p.replace(tzinfo=UTC))
                            for p in parsed
                        ],
                        type=f.type,
                    )
                )
            continue
        arrays.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA), bad


def extract_events(
    events_dir: Path | str, lake_dir: Path | str, day: str, segments: Iterable[Path] | None = None
) -> ExtractResult:
    """Write the events of one UTC day (by ``server_ts``) from closed segments only.

    Rows are de-duplicated by ``event_id`` (first occurrence in segment-name and line order
    wins; a client retry repeats the id) and sorted by ``(server_ts, event_id)``. Lines that are
    not events, torn tails and unparsable stamps are written to the quarantine file of the day
    their segment was opened and counted, never raised: one bad byte must not stop the lake.
    """
    the_day = date.fromisoformat(day)
    started = datetime.now(UTC)
    paths = sorted(segments) if segments is not None else _segments_for(Path(events_dir), the_day)
    records: list[dict[str, Any]] = []
    quarantine: list[bytes] = []
    owners: dict[str, bool] = {}
    for path in paths:
        good, bad = _read_segment(path)
        records.extend(good)
        # A segment's bad lines belong to the day it was opened, so they are counted once.
        owns_bad_lines = segment_dates(path)[0] == the_day or segments is not None
        owners[path.name] = owns_bad_lines
        if owns_bad_lines:
            for number, line in bad:
                quarantine.append(
                    orjson.dumps(
                        {
                            "segment": path.name,
                            "line": number,
                            "reason": "unparsable",
                            "raw": line.decode("utf-8", "replace"),
                        }
                    )
                )
        # Keep the row's origin so bad stamps can be quarantined with their source line.
        for r in good:
            r["_segment"] = path.name
    table, bad_mask = _events_table(records)
    if len(bad_mask) and pc.any(bad_mask.cast(pa.bool_())).as_py():
        for index in pc.indices_nonzero(bad_mask).to_pylist():
            r = records[index]
            if (
                segment_dates(Path(events_dir) / r["_segment"])[0] == the_day
                or segments is not None
            ):
                quarantine.append(
                    orjson.dumps(
                        {
                            "segment": r["_segment"],
                            "line": r["_line"],
                            "reason": "bad timestamp",
                            "event_id": r["event_id"],
                        }
                    )
                )
        table = table.filter(pc.invert(bad_mask))
    lo, hi = day_bounds(day)
    in_day = pc.and_(
        pc.greater_equal(table["server_ts"], pa.scalar(lo, _TS)),
        pc.less(table["server_ts"], pa.scalar(hi, _TS)),
    )
    table = table.filter(in_day)
    before = table.num_rows
    if before:
        # First occurrence wins: rows are in segment/line order, so the lowest index is kept.
        table = table.append_column("_i", pa.array(range(before), type=pa.int64()))
        firsts = table.group_by("event_id", use_threads=False).aggregate([("_i", "min")])
        keep = pc.is_in(table["_i"], firsts["_i_min"])
        table = table.filter(keep).drop_columns(["_i"])
        table = table.sort_by([("server_ts", "ascending"), ("event_id", "ascending")])
    path = partition_path(lake_dir, "events", day)
    write_parquet(table.select(list(EVENT_FIELDS)), path)
    if segments is None:  # every closed segment of the day was read: the sensor may skip them
        _write_cutoff(path, started)
    qpath = _quarantine_path(lake_dir, day)
    if quarantine:
        atomic.write_bytes(qpath, b"".join(line + b"\n" for line in quarantine))
    elif qpath.exists():
        qpath.unlink()
    return ExtractResult(
        table,
        path,
        quarantined=len(quarantine),
        duplicates=before - table.num_rows,
        segments=tuple(p.name for p in paths),
        extra={"quarantine_path": str(qpath) if quarantine else None},
    )
