"""Alembic: upgrade from empty, one step down and back, and models match migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from serving.db import migrate
from serving.db.tables import Base


def test_upgrade_downgrade_one_step_and_back(settings):
    url = settings.sqlalchemy_url
    migrate.upgrade(url)
    engine = create_engine(url)
    head = migrate.head_revision()
    assert migrate.schema_status(engine).current == head
    migrate.downgrade(url, "-1")
    assert migrate.schema_status(engine).current != head
    migrate.upgrade(url)
    assert migrate.schema_status(engine).current == head
    assert "products" in inspect(engine).get_table_names()
    engine.dispose()


def test_models_and_migrations_agree(settings):
    engine = create_engine(settings.sqlalchemy_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = [d for d in compare_metadata(ctx, Base.metadata)]
    engine.dispose()
    assert diff == []


def test_sqlite_runs_in_wal_mode(settings, backend):
    if backend != "sqlite":
        return
    engine = create_engine(settings.sqlalchemy_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
