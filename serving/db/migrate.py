"""Run Alembic migrations programmatically and tell whether a schema is current.

The app refuses to serve on a schema that is behind, so ``/readyz`` asks
:func:`schema_status` and the CLI's ``migrate`` calls :func:`upgrade`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _run_with_engine(url: str, fn) -> None:
    engine = create_engine(url)
    if url.startswith("sqlite"):
        # WAL survives the connection; later connections inherit it.
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            fn(cfg)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` up to ``revision``."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    _run_with_engine(url, lambda cfg: command.upgrade(cfg, revision))


def downgrade(url: str, revision: str = "-1") -> None:
    """Step the schema at ``url`` down to ``revision`` (one step by default)."""
    _run_with_engine(url, lambda cfg: command.downgrade(cfg, revision))


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str

    @property
    def is_current(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        if self.is_current:
            return f"schema at {self.head}"
        current = self.current or "nothing"
        return f"schema at {current}, code expects {self.head}: run `storeloop migrate`"


def schema_status(engine: Engine) -> SchemaStatus:
    """Read the schema revision from the database (raises if the database is unreachable)."""
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return SchemaStatus(current=current, head=head_revision())
