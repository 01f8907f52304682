"""Engine and session factories for SQLite (WAL) and PostgreSQL.

SQLite needs two things to behave under concurrent writers: WAL mode, and write transactions
that take the write lock up front (``BEGIN IMMEDIATE``) so that a read-then-write transaction
never fails with "database is locked" when it upgrades. Read-only sessions keep plain
deferred transactions so readers never queue behind writers.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

WAL_BACKSTOP_PAGES = 20_000  # 80 MB of WAL with 4 KiB pages


def json_text(value: Any) -> str:
    """JSON columns' serializer: orjson (the stdlib's ``json.dumps`` was a tenth of the
    checkout batch's CPU); keys that are not strings are written as strings, as before."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Create an engine tuned for the backend named in ``url``."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            json_serializer=json_text,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=20,
            pool_pre_ping=False,
        )
        _configure_sqlite(engine)
        return engine
    # No pre-ping: it is a round trip on every pool checkout (a fifth of a worker's CPU in the
    # checkout benchmark). A connection the server dropped fails its first statement instead;
    # SQLAlchemy sees the disconnect and invalidates the whole pool at once, so after a database
    # restart one request per worker gets the 503 and the next ones reconnect
    # (tests/faults/test_database_outage.py).
    return create_engine(
        url,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
        pool_size=pool_size,
        max_overflow=20,
        pool_pre_ping=False,
        pool_timeout=10,
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # pragma: no cover - driver callback
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # Checkpoints run in the server's background thread (serving/db/checkpoint.py), not in
        # a commit holding the write lock; this high mark is only a backstop for processes
        # that write without a server running (CLI tools).
        cur.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # pragma: no cover - driver callback
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class WriteGate:
    """Queues a process's SQLite write transactions, and the processes sharing one file.

    SQLite has one write lock; a writer that finds it taken sleeps in the busy handler (1, 2,
    5 … 100 ms steps) and retries, so under many concurrent writers the lock sits idle while
    they sleep and the unlucky ones wait seconds. Going through this gate instead, writers
    wait on a thread lock and an ``flock`` on a file beside the database, both of which hand
    over at once when released. Opt-in (``Database.write_gate()``): code that writes without it
    still works, it just falls back on the busy handler. Re-entrant within a thread.
    """

    def __init__(self, path: str | None) -> None:
        self._lock = threading.RLock()
        self._depth = threading.local()
        self._path = f"{path}-writegate" if path else None
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int | None:
        # Opened per process: a descriptor inherited across fork() shares its flock.
        if self._path is not None and self._pid != os.getpid():
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        return self._fd

    def __enter__(self) -> WriteGate:
        self._lock.acquire()
        depth = getattr(self._depth, "n", 0)
        fd = self._file() if depth == 0 else None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                self._lock.release()
                raise
        self._depth.n = depth + 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._depth.n -= 1
        try:
            if self._depth.n == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


_GATES: dict[str | None, WriteGate] = {}
_GATES_LOCK = threading.Lock()


def _sqlite_gate(engine: Engine) -> WriteGate:
    """One gate per database file per process (several ``Database`` may share a file)."""
    path = engine.url.database
    key = os.path.realpath(path) if path and path != ":memory:" else None
    with _GATES_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = WriteGate(key)
        return gate


class Database:
    """Owns the engine and hands out read and write sessions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.is_sqlite = url.startswith("sqlite")
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        #: The engine for write transactions: on SQLite they take the write lock at BEGIN.
        self.writer = self.engine.execution_options(sqlite_immediate=True)
        self._write = sessionmaker(self.writer, expire_on_commit=False)
        self._gate = _sqlite_gate(self.engine) if self.is_sqlite else None

    def private(self, *, pool_size: int = 2) -> Database:
        """A handle on the same database with a pool of its own, for one busy thread.

        On PostgreSQL psycopg keeps each connection's prepared statements until the connection
        sees a ROLLBACK, and every read-only use of a shared pooled connection ends with one
        (the pool resets it). The checkout batch thread runs the same few statements all day;
        on connections of its own, which only ever commit, they stay prepared. SQLite keeps
        the shared engine (one file, one write gate, nothing prepared server-side)."""
        if self.is_sqlite:
            return self
        return Database(self.url, pool_size=pool_size)

    def session(self, *, write: bool = False) -> Session:
        return (self._write if write else self._read)()

    def write_gate(self) -> WriteGate | nullcontext:
        """Enter around a short write transaction on hot paths (SQLite; no-op on PostgreSQL).

        Hold it only for the transaction itself: never across a call to another service.
        """
        return self._gate if self._gate is not None else nullcontext()

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.session(write=write) as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
