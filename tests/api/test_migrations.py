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


def test_money_columns_are_64_bit_and_migrate_down_and_up(settings, backend):
    """Regression (issue 18): the money columns were 32-bit on PostgreSQL, so an order over
    about €21 million failed with an opaque 422. Migration 0003 makes every amount a BIGINT
    (SQLite's integers are 64-bit already); down to 0002 and up again round-trips."""
    import importlib

    from sqlalchemy import text

    money = importlib.import_module("serving.db.migrations.versions.0003_money_bigint")
    url = settings.sqlalchemy_url
    engine = create_engine(url)

    def types() -> set[str]:
        inspector = inspect(engine)
        found = set()
        for table, column in money.MONEY_COLUMNS:
            (col,) = [c for c in inspector.get_columns(table) if c["name"] == column]
            found.add(str(col["type"]).upper())
        return found

    try:
        migrate.upgrade(url)
        huge = 20_000_000_000_000_000  # €200 trillion in cents: beyond 32 bits, within 64
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO sim_payment_intents (id, idempotency_key, amount_minor, currency,"
                    " status, amount_refunded, meta, created_at, updated_at) VALUES ('pi_big',"
                    " 'big', :a, 'EUR', 'succeeded', :a, '{}', '2026-01-01', '2026-01-01')"
                ),
                {"a": huge},
            )
            stored = conn.execute(
                text("SELECT amount_minor, amount_refunded FROM sim_payment_intents")
            ).one()
            conn.execute(text("DELETE FROM sim_payment_intents"))
        assert tuple(stored) == (huge, huge)
        if backend == "postgresql":
            assert types() == {"BIGINT"}
        migrate.downgrade(url, "0002")
        assert migrate.schema_status(engine).current == "0002"
        if backend == "postgresql":
            assert types() == {"INTEGER"}
        migrate.upgrade(url)
        assert migrate.schema_status(engine).current == migrate.head_revision()
        if backend == "postgresql":
            assert types() == {"BIGINT"}
    finally:
        migrate.upgrade(url)
        engine.dispose()
