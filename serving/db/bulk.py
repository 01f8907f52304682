"""Multi-row INSERTs with the statement compiled once and the rows bound by plain functions.

Why: the checkout batch inserts a few hundred rows per transaction into a dozen tables. Through
``Connection.execute(insert(table), rows)`` SQLAlchemy rebuilds its execution context for every
call and runs each value through a chain of generic processors; on SQLite, where the insert
itself is cheap, that bookkeeping cost more than the database's work while the write lock was
held. A :class:`BulkInsert` compiles the INSERT for one set of columns once per dialect, keeps
each column's own bind processor (so a value is stored exactly as SQLAlchemy would store it:
dates as SQLite's text format, JSON as text, …) and hands the driver a list of tuples.

Only for SQLite, whose driver takes the tuples as they are; on other dialects (PostgreSQL's
insertmanyvalues path is already one statement per batch) it is ``Connection.execute``. Columns
with a Python-side default must be given in every row (the fast path does not apply defaults);
a row set that leaves one out goes through ``Connection.execute`` instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert


class BulkInsert:
    """``BulkInsert(table).execute(conn, rows)``: rows are dicts with the same keys."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan | None] = {}
        self._lock = threading.Lock()

    def execute(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        keys = tuple(rows[0])
        plan = self._plan(conn, keys)
        if plan is None:
            conn.execute(insert(self.table), list(rows))
            return
        conn.exec_driver_sql(plan.sql, [plan.bind(row) for row in rows])

    def _plan(self, conn: Connection, keys: tuple[str, ...]) -> _Plan | None:
        dialect = conn.dialect
        cache_key = (dialect.name, keys)
        plan = self._plans.get(cache_key, _MISSING)
        if plan is not _MISSING:
            return plan
        with self._lock:
            plan = self._plans[cache_key] = _build(self.table, keys, dialect)
        return plan


_MISSING: Any = object()


class _Plan:
    __slots__ = ("keys", "processors", "sql")

    def __init__(self, sql: str, keys: tuple[str, ...], processors: list[Callable | None]):
        self.sql = sql
        self.keys = keys
        self.processors = processors

    def bind(self, row: dict[str, Any]) -> tuple:
        # Processors see None too: a JSON column stores Python None as JSON null, not NULL.
        return tuple(
            row[key] if process is None else process(row[key])
            for key, process in zip(self.keys, self.processors, strict=True)
        )


def _build(table: Table, keys: tuple[str, ...], dialect: Any) -> _Plan | None:
    if dialect.name != "sqlite" or dialect.paramstyle != "qmark":
        return None
    columns = table.c
    given = set(keys)
    for column in columns:
        if column.key not in given and column.default is not None:
            return None  # a Python-side default the fast path would not apply
    processors = [columns[k].type.dialect_impl(dialect).bind_processor(dialect) for k in keys]
    names = ", ".join(dialect.identifier_preparer.format_column(columns[k]) for k in keys)
    table_name = dialect.identifier_preparer.format_table(table)
    marks = ", ".join("?" for _ in keys)
    return _Plan(f"INSERT INTO {table_name} ({names}) VALUES ({marks})", keys, processors)
