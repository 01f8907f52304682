"""The catalog-sync leader lock: a PostgreSQL advisory lock on PostgreSQL, flock on SQLite.

Hosts sharing one index folder share one leader; hosts with their own folders each lead their
own; a leader that is SIGKILLed frees the lock (the server ends its session), so another host
takes over without anyone cleaning up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from devtools.waits import scaled
from serving.core.config import Settings
from serving.services.ml.catalog_sync import CatalogSyncLock

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys, time
from pathlib import Path
from sqlalchemy import create_engine
from serving.services.ml.catalog_sync import CatalogSyncLock
lock = CatalogSyncLock(create_engine(sys.argv[1]), Path(sys.argv[2]))
print("leader" if lock.try_acquire() else "follower", flush=True)
time.sleep(600)
"""


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request, tmp_path: Path):
    if request.param == "postgresql":
        url = Settings(database_url=request.getfixturevalue("pg_schema_url")).sqlalchemy_url
    else:
        url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = create_engine(url)
    yield engine
    engine.dispose()


def test_one_leader_per_index_folder(engine, tmp_path: Path) -> None:
    shared, own = tmp_path / "shared" / "search", tmp_path / "own" / "search"
    first, second = CatalogSyncLock(engine, shared), CatalogSyncLock(engine, shared)
    other = CatalogSyncLock(engine, own)
    expected = "advisory" if engine.dialect.name == "postgresql" else "flock"
    assert first.kind == expected
    assert first.try_acquire()
    assert not second.try_acquire(), "a second host on the same folder follows"
    assert other.try_acquire(), "a host with its own folder leads its own"
    first.release()
    assert second.try_acquire(), "released: the next one takes over"
    second.release()
    other.release()


def test_a_killed_leader_frees_the_lock(engine, tmp_path: Path) -> None:
    root = tmp_path / "shared" / "search"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, engine.url.render_as_string(hide_password=False), str(root)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "leader"
        lock = CatalogSyncLock(engine, root)
        assert not lock.try_acquire()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    deadline = time.monotonic() + scaled(30)
    while not lock.try_acquire():  # the server notices the dead session
        assert time.monotonic() < deadline, "the killed leader's lock was never freed"
        time.sleep(0.1)
    lock.release()
