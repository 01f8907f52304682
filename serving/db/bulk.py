"""Multi-row statements compiled once, with the rows bound before the transaction starts.

Why: the checkout batch writes a few hundred rows per transaction into a dozen tables. Through
``Connection.execute(statement, rows)`` SQLAlchemy rebuilds its execution context for every
call and runs each value through a chain of generic processors; on SQLite, where the write
itself is cheap, that bookkeeping cost more than the database's work, and it ran while the one
write lock was held (and the other worker process waited for it). Here a statement is compiled
for one set of parameter names once per dialect, each parameter keeps its own bind processor
(so a value is stored exactly as SQLAlchemy would store it: dates in SQLite's text format, JSON
as text, …), and :meth:`bind` turns the rows into the driver's tuples *before* the lock is
taken. :meth:`Bound.run` inside the transaction is then one ``executemany`` of ready tuples.

On SQLite the driver gets tuples for ``?`` marks. On PostgreSQL (psycopg) an INSERT sends all
its rows as one JSON document that the server expands (:class:`_JsonRowsPlan`); an UPDATE or
DELETE is an ``executemany`` of named parameters with SQLAlchemy's own SQL text and type casts
(psycopg pipelines the rows). Either way the text never changes, so it is parsed once and
prepared by the server; through ``Connection.execute`` the same statements cost about as much
client CPU again. Other
dialects run through ``Connection.execute``. INSERT columns with a Python-side default must be
given in every row (the fast path does not apply defaults); a row set that leaves one out also
goes through ``Connection.execute``. Statements with expanding (``IN``) parameters are not
supported.

One module past 500 lines on purpose: compiling, binding and running are three stages of one
statement object whose caches must stay in step; split, each stage would reach into the others.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from psycopg.rows import namedtuple_row
from sqlalchemy import (
    JSON,
    Connection,
    CursorResult,
    DateTime,
    LargeBinary,
    Numeric,
    Table,
    TypeDecorator,
    insert,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable


class Bound:
    """A statement with its rows already bound: run it inside the transaction."""

    __slots__ = ("params", "rows", "setup", "sql", "statement")

    def __init__(
        self,
        statement: Executable | None,
        sql: str | None,
        params: Any,
        rows: int,
        setup: str | None = None,
    ) -> None:
        self.statement = statement
        self.sql = sql
        self.params = params  # a list for executemany; one dict for a one-statement plan
        self.rows = rows
        #: Run first, in the same transaction (a planner setting the statement needs).
        self.setup = setup

    def __len__(self) -> int:
        return self.rows

    def run(self, conn: Connection) -> CursorResult | None:
        if not self.rows:
            return None
        if self.setup is not None:
            conn.exec_driver_sql(self.setup)
        if self.sql is not None:
            return conn.exec_driver_sql(self.sql, self.params)
        assert self.statement is not None
        return conn.execute(self.statement, self.params)


def run_all(conn: Connection, statements: Sequence[Bound], *, commit: bool = False) -> list[int]:
    """Run bound statements in order inside the caller's transaction; their row counts.

    On PostgreSQL (psycopg) they go out in one pipeline: one round trip for all of them
    instead of one each. A batch's transaction is a dozen statements, and when the machine is
    busy each round trip waits for the server process and then this thread to be scheduled
    again, which made the checkout's latency on PostgreSQL several times SQLite's. An error
    surfaces when the pipeline ends and the transaction rolls back as usual. ``commit``: on
    PostgreSQL the COMMIT goes in the same round trip (the caller's own commit then finds
    nothing to do); elsewhere the caller commits as usual."""
    if not _is_psycopg(conn.dialect) or any(b.rows and b.sql is None for b in statements):
        counts = []
        for bound in statements:
            result = bound.run(conn)
            counts.append(0 if result is None else result.rowcount)
        return counts
    raw = conn.connection.driver_connection
    cursors: list[Any] = []
    with raw.pipeline():
        setups = dict.fromkeys(b.setup for b in statements if b.rows and b.setup)
        set_up = [raw.execute(setup) for setup in setups]
        for bound in statements:
            if not bound.rows:
                cursors.append(None)
                continue
            cursor = raw.cursor()
            if isinstance(bound.params, list):
                cursor.executemany(bound.sql, bound.params)
            else:
                cursor.execute(bound.sql, bound.params)
            cursors.append(cursor)
        if commit:
            raw.commit()
    counts = [0 if cursor is None else cursor.rowcount for cursor in cursors]
    for cursor in [*set_up, *cursors]:
        if cursor is not None:
            cursor.close()
    return counts


class _Plan:
    __slots__ = ("names", "processors", "sql")

    def __init__(self, sql: str, names: tuple[str, ...], processors: list[Callable | None]):
        self.sql = sql
        self.names = names
        self.processors = processors

    def bind(self, row: dict[str, Any]) -> Any:
        # Processors see None too: a JSON column stores Python None as JSON null, not NULL.
        return tuple(
            row[name] if process is None else process(row[name])
            for name, process in zip(self.names, self.processors, strict=True)
        )

    def bind_all(self, rows: Sequence[dict[str, Any]]) -> Bound:
        return Bound(None, self.sql, [self.bind(row) for row in rows], len(rows))


class _NamedPlan(_Plan):
    """PostgreSQL ``executemany``: one dict of named, processed parameters per row."""

    __slots__ = ("literals",)

    def __init__(self, sql, names, processors, literals: dict[str, Any]) -> None:
        super().__init__(sql, names, processors)
        self.literals = literals

    def bind(self, row: dict[str, Any]) -> Any:
        bound = dict(self.literals)
        for name, process in zip(self.names, self.processors, strict=True):
            bound[name] = row[name] if process is None else process(row[name])
        return bound


_PARAM = re.compile(r"%\((\w+)\)s")
_MISSING: Any = object()


def _processor(type_: Any, dialect: Dialect) -> Callable | None:
    """The bind processor of ``type_``; for dates, one that remembers its last value.

    A batch stamps all its rows with the same ``now``: formatting it once instead of once per
    row and column took a twentieth off the batch's CPU. Only for datetimes, which are
    immutable; the memo is replaced whole, so threads sharing it never see half of one."""
    impl = type_.dialect_impl(dialect)
    process = impl.bind_processor(dialect)
    if process is None or not isinstance(getattr(type_, "impl", type_), DateTime):
        return process
    last: list[tuple[Any, Any]] = [(_MISSING, None)]

    def remembered(value: Any) -> Any:
        seen, result = last[0]
        if value is seen:
            return result
        result = process(value)
        last[0] = (value, result)
        return result

    return remembered


class _Compiled:
    """Plans per (dialect, parameter names), built on first use under a lock."""

    def __init__(self) -> None:
        self._plans: dict[tuple[str, tuple[str, ...]], _Plan | None] = {}
        self._lock = threading.Lock()

    def _plan(self, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | None:
        cache_key = (dialect.name, keys)
        plan = self._plans.get(cache_key, _MISSING)
        if plan is _MISSING:
            with self._lock:
                plan = self._plans[cache_key] = self._build(dialect, keys)
        return plan

    def _build(self, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | None:
        raise NotImplementedError

    def _statement(self) -> Executable:
        raise NotImplementedError

    def bind(self, dialect: Dialect, rows: Sequence[dict[str, Any]]) -> Bound:
        """The rows as the driver will take them (outside any transaction)."""
        if not rows:
            return Bound(None, None, [], 0)
        plan = self._plan(dialect, tuple(rows[0]))
        if plan is None:
            return Bound(self._statement(), None, list(rows), len(rows))
        return plan.bind_all(rows)

    def execute(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> CursorResult | None:
        """Bind and run at once (when there is no lock to keep the binding out of)."""
        return self.bind(conn.dialect, rows).run(conn)


class BulkInsert(_Compiled):
    """``BulkInsert(table).execute(conn, rows)``: rows are dicts with the same keys."""

    def __init__(self, table: Table) -> None:
        super().__init__()
        self.table = table

    def _statement(self) -> Executable:
        return insert(self.table)

    def _build(self, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | None:
        if not (_is_sqlite(dialect) or _is_psycopg(dialect)):
            return None
        columns = self.table.c
        given = set(keys)
        for column in columns:
            if column.key not in given and column.default is not None:
                return None  # a Python-side default the fast path would not apply
        if _is_psycopg(dialect):
            return _json_rows_plan(self.table, keys, dialect)
        processors = [_processor(columns[k].type, dialect) for k in keys]
        prep = dialect.identifier_preparer
        names = ", ".join(prep.format_column(columns[k]) for k in keys)
        marks = ", ".join("?" for _ in keys)
        sql = f"INSERT INTO {prep.format_table(self.table)} ({names}) VALUES ({marks})"
        return _Plan(sql, keys, processors)


class BulkStatement(_Compiled):
    """A Core UPDATE/DELETE/INSERT with named ``bindparam``s, run for many rows of values.

    Parameters the rows leave out keep the value written into the statement (the literal
    ``status="done"`` of ``.values(status="done")``).

    ``one_statement``: on PostgreSQL, run an UPDATE or an INSERT … VALUES as one statement
    over all the rows (:func:`_set_based_plan`) instead of once per row. For an UPDATE that
    is a join, so it is right only when no two rows of values update the same row (a joined
    row is updated once, not once per match), and the rows are locked in whatever order the
    plan visits them: keep it off where several writers must lock rows in one order."""

    def __init__(self, statement: Executable, *, one_statement: bool = False) -> None:
        super().__init__()
        self.statement = statement
        self.one_statement = one_statement

    def _statement(self) -> Executable:
        return self.statement

    def _build(self, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | None:
        if _is_psycopg(dialect):
            return self._build_named(dialect, keys)
        if not _is_sqlite(dialect):
            return None
        compiled = self.statement.compile(dialect=dialect)
        order = tuple(compiled.positiontup or ())
        given = set(keys)
        names, processors = [], []
        literals: dict[str, Any] = {}
        for name in order:
            param = compiled.binds[name]
            if param.expanding:
                return None
            process = _processor(param.type, dialect)
            if name not in given:
                value = param.effective_value
                literals[name] = value if process is None else process(value)
                process = None
            names.append(name)
            processors.append(process)
        if not literals:
            return _Plan(compiled.string, tuple(names), processors)
        return _LiteralPlan(compiled.string, tuple(names), processors, literals)

    def _build_named(self, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | None:
        compiled = self.statement.compile(dialect=dialect)
        if self.one_statement:
            plan = _set_based_plan(compiled, keys, dialect)
            if plan is not None:
                return plan
        given = set(keys)
        names, processors = [], []
        literals: dict[str, Any] = {}
        for name in dict.fromkeys(_PARAM.findall(compiled.string)):
            param = compiled.binds.get(name)
            if param is None or param.expanding:
                return None
            process = _processor(param.type, dialect)
            if name in given:
                names.append(name)
                processors.append(process)
            else:
                value = param.effective_value
                literals[name] = value if process is None else process(value)
        return _NamedPlan(compiled.string, tuple(names), processors, literals)


class _JsonRowsPlan(_Plan):
    """PostgreSQL: all the rows as one JSON document, expanded by the server.

    ``INSERT … SELECT … FROM json_populate_recordset(NULL::table, %(_rows)s)``, or an UPDATE
    ``… FROM json_to_recordset(%(_rows)s) AS _rows(…)``: one statement however many rows,
    with text that never changes (prepared once). Sent as an executemany of one-row
    statements instead, each row was a statement of its own for psycopg to encode and for the
    server to bind, execute and answer: the batch thread's largest cost. orjson writes the
    document in C; the server parses it into the columns' own types."""

    __slots__ = ("converted", "literals", "setup")

    def __init__(
        self,
        sql,
        names,
        processors,
        literals: dict[str, Any] | None = None,
        setup: str | None = None,
    ) -> None:
        super().__init__(sql, names, processors)
        self.literals = literals or {}
        self.setup = setup
        self.converted = [
            (name, process)
            for name, process in zip(names, processors, strict=True)
            if process is not None
        ]

    def bind_all(self, rows: Sequence[dict[str, Any]]) -> Bound:
        if self.converted:
            rows = [
                {**row, **{name: process(row[name]) for name, process in self.converted}}
                for row in rows
            ]
        document = orjson.dumps(rows, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_NAIVE_UTC)
        params = {**self.literals, "_rows": document.decode()}
        return Bound(None, self.sql, params, len(rows), self.setup)


# The server cannot know how many rows a JSON document holds: it plans for a hundred, and for
# that many it would rather hash them and scan the whole table being updated than probe its
# index once per row. For the few rows of a batch (and a table of millions) the probes are
# right, and they lock the rows one by one as the per-row statements did; only joins are
# touched, and only until the transaction ends (a set_config local to it).
_PROBE_BY_INDEX = (
    "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"
)


def _document_processor(type_: Any, dialect: Dialect) -> Callable | None:
    """What a value of ``type_`` goes through before it goes into the JSON document: the
    Python-side processing a column type defines itself (UTC datetimes); the driver's own
    adaptation is the server's job here (it reads the document into the column types)."""
    return _processor(type_, dialect) if isinstance(type_, TypeDecorator) else None


def _json_rows_plan(table: Table, keys: tuple[str, ...], dialect: Dialect) -> _Plan:
    """The INSERT of :class:`_JsonRowsPlan` for these columns of ``table`` (None when one
    has a type JSON cannot carry exactly: the statement then runs through SQLAlchemy).

    JSON columns take the value itself; a JSON ``null`` for None (as SQLAlchemy stores it)
    is put back, as the expansion makes it SQL NULL."""
    prep = dialect.identifier_preparer
    columns = table.c
    if not all(_json_carries(columns[k].type) for k in keys):
        return None
    names = ", ".join(prep.format_column(columns[k]) for k in keys)
    picks = [_pick(prep.format_column(columns[k]), columns[k].type) for k in keys]
    processors = [_document_processor(columns[k].type, dialect) for k in keys]
    target = prep.format_table(table)
    sql = (
        f"INSERT INTO {target} ({names}) SELECT {', '.join(picks)}"
        f" FROM json_populate_recordset(NULL::{target}, %(_rows)s::json)"
    )
    return _JsonRowsPlan(sql, keys, processors)


def _json_carries(type_: Any) -> bool:
    """Whether a value of ``type_`` survives the trip through JSON: decimals do not (orjson
    refuses them), floats lose NaN and infinities, bytes have no JSON form."""
    return not isinstance(type_, (Numeric, LargeBinary))


def _pick(reference: str, type_: Any) -> str:
    return f"COALESCE({reference}, 'null'::json)" if isinstance(type_, JSON) else reference


def _set_based_plan(compiled: Any, keys: tuple[str, ...], dialect: Dialect) -> _Plan | None:
    """A :class:`_JsonRowsPlan` for a compiled UPDATE or INSERT … VALUES with named
    parameters: each parameter the rows give becomes a column of ``json_to_recordset``;
    the others keep their literal values. None for a shape this does not rewrite, or for a
    type JSON cannot carry exactly."""
    sql: str = compiled.string
    given = set(keys)
    names = list(dict.fromkeys(_PARAM.findall(sql)))
    literals: dict[str, Any] = {}
    types = dialect.type_compiler_instance
    columns, row_names, processors = [], [], []
    for name in names:
        param = compiled.binds.get(name)
        if param is None or param.expanding:
            return None
        if name in given:
            if not _json_carries(param.type):
                return None
            columns.append(f'"{name}" {types.process(param.type)}')
            row_names.append(name)
            processors.append(_document_processor(param.type, dialect))
        else:
            process = _processor(param.type, dialect)
            value = param.effective_value
            literals[name] = value if process is None else process(value)
    if not row_names or "_rows" in names:
        return None
    types_of = {name: compiled.binds[name].type for name in row_names}

    def reference(match: re.Match) -> str:
        name = match[1]
        if name not in given:
            return match[0]
        return _pick(f'_rows."{name}"', types_of[name])

    body = _PARAM.sub(reference, sql)
    source = f"json_to_recordset(%(_rows)s::json) AS _rows({', '.join(columns)})"
    if body.startswith("UPDATE "):
        head, found, where = body.partition(" WHERE ")
        if not found or "(SELECT" in head or " RETURNING " in where:
            return None
        return _JsonRowsPlan(
            f"{head} FROM {source} WHERE {where}",
            tuple(row_names),
            processors,
            literals,
            setup=_PROBE_BY_INDEX,
        )
    if body.startswith("INSERT INTO "):
        head, found, rest = body.partition(" VALUES ")
        values = _first_group(rest)
        after = rest[len(values) :].strip()
        # Bulk statements are run for their row counts: an implicit RETURNING goes.
        if not found or after and not after.startswith("RETURNING "):
            return None
        return _JsonRowsPlan(
            f"{head} SELECT {values[1:-1]} FROM {source}", tuple(row_names), processors, literals
        )
    return None


def _first_group(text: str) -> str:
    """``"(a, (b))"`` of ``"(a, (b)) RETURNING x"``."""
    depth = 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return text[: i + 1]
    return text


def _is_sqlite(dialect: Dialect) -> bool:
    return dialect.name == "sqlite" and dialect.paramstyle == "qmark"


def _is_psycopg(dialect: Dialect) -> bool:
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


class _LiteralPlan(_Plan):
    __slots__ = ("literals",)

    def __init__(
        self,
        sql: str,
        names: tuple[str, ...],
        processors: list[Callable | None],
        literals: dict[str, Any],
    ) -> None:
        super().__init__(sql, names, processors)
        self.literals = literals

    def bind(self, row: dict[str, Any]) -> tuple:
        literals = self.literals
        return tuple(
            literals[name]
            if name in literals
            else (row[name] if process is None else process(row[name]))
            for name, process in zip(self.names, self.processors, strict=True)
        )


def fetch_all(conn: Connection, queries: Sequence[tuple[Executable, dict[str, Any]]]) -> list:
    """Run SELECTs in order inside the caller's transaction; each one's rows.

    On PostgreSQL (psycopg) they go out in one pipeline (with the transaction's BEGIN when they
    open it), and an ``IN`` over an expanding parameter becomes ``= ANY(array)``: the text no
    longer depends on how many values there are, so it is parsed once and prepared by the
    server. Rows keep their column names as attributes, as SQLAlchemy's rows do."""
    plans = [_query_plan(statement, conn.dialect) for statement, _ in queries]
    if not all(plans):
        return [conn.execute(statement, params).all() for statement, params in queries]
    if not _is_psycopg(conn.dialect):
        return [
            conn.exec_driver_sql(plan.sql, plan.bind(params)).all()
            for plan, (_, params) in zip(plans, queries, strict=True)
        ]
    raw = conn.connection.driver_connection
    cursors = []
    with raw.pipeline():
        for plan, (_, params) in zip(plans, queries, strict=True):
            cursor = raw.cursor(row_factory=namedtuple_row)
            cursor.execute(plan.sql, plan.bind(params))
            cursors.append(cursor)
    rows = [cursor.fetchall() for cursor in cursors]
    for cursor in cursors:
        cursor.close()
    return rows


_QUERY_PLANS: dict[tuple[Any, str], _Plan | None] = {}


def _query_plan(statement: Executable, dialect: Dialect) -> _Plan | None:
    if not (_is_psycopg(dialect) or _is_sqlite(dialect)):
        return None
    key = (statement, dialect.name)
    plan = _QUERY_PLANS.get(key, _MISSING)
    if plan is _MISSING:
        plan = _QUERY_PLANS[key] = _build_query(statement, dialect)
    return plan


def _build_query(statement: Executable, dialect: Dialect) -> _Plan | None:
    if _is_sqlite(dialect):
        return _build_sqlite_query(statement, dialect)
    compiled = statement.compile(dialect=dialect)
    sql = compiled.string
    types = dialect.type_compiler_instance
    for name, param in compiled.binds.items():
        if param.expanding:
            marker = f"IN (__[POSTCOMPILE_{name}])"
            if marker not in sql:  # pragma: no cover - a form this does not rewrite
                return None
            sql = sql.replace(marker, f"= ANY(%({name})s::{types.process(param.type)}[])")
    if "__[POSTCOMPILE" in sql:  # pragma: no cover
        return None
    names, processors, literals = [], [], {}
    for name in dict.fromkeys(_PARAM.findall(sql)):
        param = compiled.binds[name]
        process = _processor(param.type, dialect)
        if param.expanding or param.callable is None and param.value is None:
            names.append(name)
            processors.append(_each(process) if param.expanding and process else process)
        else:
            value = param.effective_value
            literals[name] = value if process is None else process(value)
    return _NamedPlan(sql, tuple(names), processors, literals)


def _build_sqlite_query(statement: Executable, dialect: Dialect) -> _Plan | None:
    """SQLite has no arrays: an expanding ``IN`` reads a JSON list (``json_each``), so the
    text is the same for any number of values and the driver's statement cache keeps it."""
    compiled = statement.compile(dialect=dialect)
    sql = compiled.string
    names, processors, literals = [], [], {}
    for name in compiled.positiontup or ():
        param = compiled.binds[name]
        process = _processor(param.type, dialect)
        if param.expanding:
            sql = sql.replace(f"(__[POSTCOMPILE_{name}])", "(SELECT value FROM json_each(?))")
            names.append(name)
            processors.append(_json_list(process))
        elif param.callable is None and param.value is None:
            names.append(name)
            processors.append(process)
        else:
            value = param.effective_value
            literals[name] = value if process is None else process(value)
            names.append(name)
            processors.append(None)
    if "__[POSTCOMPILE" in sql:  # pragma: no cover
        return None
    return _LiteralPlan(sql, tuple(names), processors, literals)


def _json_list(process: Callable | None) -> Callable:
    each = _each(process) if process is not None else None

    def to_json(values: list) -> str:
        return orjson.dumps(values if each is None else each(values)).decode()

    return to_json


def _each(process: Callable) -> Callable:
    """A processor for a list parameter: the element type's processor on every element."""

    def each(values: list) -> list:
        return [process(v) for v in values]

    return each
